/* session.c: placeholder, being written. */
