import { storageCrashes } from './crash.suite.js';

storageCrashes('s3');
