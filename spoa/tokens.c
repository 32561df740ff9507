/* tokens.c: placeholder, being written. */
