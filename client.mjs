// The ES module entry: the same objects as client.js (one native binding, one set of
// classes), so `import` and `require` in one process share everything.
import client from './client.js'

export const { createPool, hello, Pool, Dedicated, Transaction, Connection } = client
export default client
