/* spop.c: placeholder, being written. */
