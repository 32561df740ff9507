/* agentctl.c: placeholder, being written. */
