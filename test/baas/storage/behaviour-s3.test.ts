import { storageBehaviour } from './behaviour.suite.js';

storageBehaviour('s3');
