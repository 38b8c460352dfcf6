#ifndef STOCKROOM_CSODIUM_SHIM_H
#define STOCKROOM_CSODIUM_SHIM_H
// libsodium: SHA-256, Argon2id password hashing, random bytes, constant-time compare.
#include <sodium.h>
#endif
