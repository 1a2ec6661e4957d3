import { storageChecks } from './checks.suite.js';

storageChecks('file');
