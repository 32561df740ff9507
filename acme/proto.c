/* proto.c: placeholder, being written. */
