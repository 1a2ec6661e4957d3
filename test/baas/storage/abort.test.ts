import { storageAborts } from './abort.suite.js';

storageAborts('file');
