import { storageBehaviour } from './behaviour.suite.js';

storageBehaviour('file');
