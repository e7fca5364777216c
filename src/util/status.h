/* Return codes shared by the modules below the HTTP layer (libgit2 style: 0 ok, negative failures). */
#ifndef BERTH_UTIL_STATUS_H
#define BERTH_UTIL_STATUS_H

#define BERTH_OK 0
#define BERTH_ERROR -1     /* unexpected (I/O, SQLite); already logged */
#define BERTH_ENOTFOUND -2 /* what was asked for does not exist */
#define BERTH_EBUSY -3     /* another request is using the object right now */
#define BERTH_EDIGEST -4   /* content does not match the digest given */
#define BERTH_ERANGE -5    /* offset does not match */
#define BERTH_EMISSING -6  /* a reference points at something missing */
#define BERTH_EEXISTS -7   /* the name is taken */
#define BERTH_ESIZE -8     /* a reference's size differs from the object's */
#define BERTH_EDENIED -9   /* a policy forbids it (an immutable tag) */
#define BERTH_EQUOTA -10   /* it would take a namespace over its quota */

#endif
