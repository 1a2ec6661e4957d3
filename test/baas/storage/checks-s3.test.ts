import { storageChecks } from './checks.suite.js';

storageChecks('s3');
