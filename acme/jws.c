/* jws.c: placeholder, being written. */
