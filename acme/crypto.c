/* crypto.c: placeholder, being written. */
