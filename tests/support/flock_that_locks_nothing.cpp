// Preloaded (LD_PRELOAD) into the processes of the shared-cache tests: the
// flock(2) of a network filesystem that does not lock across its clients.
// By default every lock is granted at once, as on NFS mounted with
// local_lock=flock seen from two machines; with FLOCK_FAILS_WITH=ENOSYS or
// ENOLCK it fails the way Lustre mounted without -o flock, or NFS without
// lockd, does.
#include <sys/file.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern "C" int flock(int, int) {
  const char* fails = std::getenv("FLOCK_FAILS_WITH");
  if (fails && std::strcmp(fails, "ENOSYS") == 0) {
    errno = ENOSYS;
    return -1;
  }
  if (fails && std::strcmp(fails, "ENOLCK") == 0) {
    errno = ENOLCK;
    return -1;
  }
  return 0;
}
