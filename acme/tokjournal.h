/* tokjournal.h - which challenge tokens this process has published to the
 * agents, on disk, so that the next start withdraws what a crashed run left
 * behind (an agent keeps a token for its TTL, an hour by default).
 *
 *   <state-dir>/tokens/<pid>.journal   "+ TOKEN" / "- TOKEN" lines
 *
 * Each process writes its own journal and holds flock(LOCK_EX) on it while
 * it lives; a journal nobody holds belongs to a process that is gone (a
 * `hacme run` and CLI verbs beside it each keep theirs). Lines are appended
 * with one write(2) each, no fsync: what matters is a process crash, not a
 * power loss (the agents lose their tokens then too). Tokens are base64url
 * (common/token.h): a line never holds anything else. */
#ifndef HACME_TOKJOURNAL_H
#define HACME_TOKJOURNAL_H

#include <stddef.h>

#define TOKJOURNAL_ERR_MAX 512

struct tokjournal;

/* Calls fn for every token a journal of a process no longer running left
 * published (added, never removed), then removes that journal. Returns the
 * number of tokens, or -1 with err (nothing removed then). */
int tokjournal_orphans(const char *state_dir, void (*fn)(void *arg, const char *token),
    void *arg, char *err, size_t errlen);

/* Creates (tokens/ 0700) and locks this process's journal. NULL with err. */
struct tokjournal *tokjournal_open(const char *state_dir, char *err, size_t errlen);
/* Removes the journal (a clean exit withdrew every token). NULL: no-op. */
void tokjournal_close(struct tokjournal *j);

void tokjournal_add(struct tokjournal *j, const char *token);
void tokjournal_del(struct tokjournal *j, const char *token);
/* Lines written since the journal was last emptied. */
size_t tokjournal_lines(const struct tokjournal *j);
/* Empties the journal (call it with no token published, or follow with
 * tokjournal_add for every token still published). */
void tokjournal_reset(struct tokjournal *j);

#endif
