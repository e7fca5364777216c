/*
 * The tar format, as far as berth's backups need it (store/backup.c): POSIX ustar headers, with a pax extended
 * header ('x') in front when a name does not fit the ustar fields or a size does not fit 11 octal digits. The reader
 * also takes what GNU tar writes when an archive is re-packed by hand: base-256 numbers and 'L' long names. Pure
 * functions over 512-byte blocks: the caller reads and writes the stream.
 */
#ifndef BERTH_UTIL_TAR_H
#define BERTH_UTIL_TAR_H

#include <stddef.h>
#include <stdint.h>

#define TAR_BLOCK 512
#define TAR_NAME_MAX 256               /* the longest member name berth writes or takes (a sha512 blob: 144) */
#define TAR_HEADER_MAX (3 * TAR_BLOCK) /* a pax header, its records, the ustar header */
#define TAR_PAX_MAX 65536              /* the largest extended header (pax or GNU long name) the reader takes */

typedef struct {
    char name[TAR_NAME_MAX + 1];
    uint64_t size;
    unsigned mode;
    int64_t mtime;
    char type; /* '0' a file, '5' a folder, 'x' pax, 'g' pax global, 'L' GNU long name, ... */
} tar_entry_t;

/**
 * Write the header blocks of file entry `e` (type '0' unless set) into `out`: one ustar block, or a pax header, its
 * records and the ustar block. Returns the bytes written (a multiple of TAR_BLOCK), or 0 if the name is empty or
 * longer than TAR_NAME_MAX.
 */
size_t tar_header(const tar_entry_t *e, unsigned char out[TAR_HEADER_MAX]);

/** The zero bytes that follow `size` bytes of data to the next block boundary. */
static inline size_t tar_padding(uint64_t size)
{
    return (size_t)((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK);
}

enum { TAR_OK = 0, TAR_ZERO = 1, TAR_BAD = -1 };

/**
 * Parse one header block into *e (name from the ustar name and prefix fields, leading "./" removed). TAR_OK, TAR_ZERO
 * for a block of zeros (the end of the archive), TAR_BAD when the checksum or a number is wrong.
 */
int tar_parse(const unsigned char blk[TAR_BLOCK], tar_entry_t *e);

/**
 * Apply the records of a pax extended header (`data`, `len` bytes) to the entry that follows it: "path" and "size"
 * (others are ignored). 0, or -1 when a record is malformed or the path is longer than TAR_NAME_MAX.
 */
int tar_pax_apply(const char *data, size_t len, tar_entry_t *e);

#endif
