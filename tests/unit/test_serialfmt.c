/* test_serialfmt.c - serials as openssl prints them. */
#include <string.h>

#include "acme/serialfmt.h"
#include "tap.h"

int
main(void)
{
	const char *a, *b;

	ok(strcmp(serial_show("ABC"), "0ABC") == 0, "odd length: a leading 0 (openssl prints whole bytes)");
	ok(strcmp(serial_show("0ABC"), "0ABC") == 0, "even length: as it is");
	ok(strcmp(serial_show("3C00AF3184B57454"), "3C00AF3184B57454") == 0, "8 bytes: as it is");
	ok(strcmp(serial_show("0"), "00") == 0, "zero: 00, as openssl prints it");
	ok(serial_show(NULL) == NULL && strcmp(serial_show(""), "") == 0, "NULL and empty pass through");
	a = serial_show("1");
	b = serial_show("2");
	ok(strcmp(a, "01") == 0 && strcmp(b, "02") == 0, "two in one printf: separate buffers");
	return tap_done();
}
