/* serialfmt.c - see serialfmt.h. */
#include "acme/serialfmt.h"

#include <stdio.h>
#include <string.h>

const char *
serial_show(const char *serial)
{
	static char buf[8][48];
	static unsigned next;
	char *b;

	if (serial == NULL || serial[0] == '\0' || strlen(serial) % 2 == 0 ||
	    strlen(serial) + 2 > sizeof(buf[0]))
		return serial;
	b = buf[next++ % 8];
	snprintf(b, sizeof(buf[0]), "0%s", serial);
	return b;
}
