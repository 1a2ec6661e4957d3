import { storageCrashes } from './crash.suite.js';

storageCrashes('file');
