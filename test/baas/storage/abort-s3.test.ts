import { storageAborts } from './abort.suite.js';

storageAborts('s3');
