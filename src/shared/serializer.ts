/** A socket's serializer, named by the `vsn` of its URL: Phoenix's JSON objects (1.0.0) or arrays and binary (2.0.0). */
export type Vsn = '1.0.0' | '2.0.0';
