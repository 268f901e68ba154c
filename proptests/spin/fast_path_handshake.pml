/*
 * proptests/spin/fast_path_handshake.pml
 *
 * A spin model of the invalidation fast path of NotifierDomain (notifier/domain.cc):
 * fast_start() / fast_end(), the closed flag (fast_closed_), the per-shard counts of fast
 * invalidations in flight (fast_[s].active), and the handshake by which insert() and the
 * last invalidate_range_end() (apply_deferred_locked()) let the walked tree gain a notifier
 * only once no fast invalidation may have missed it: close, check the counts, publish and
 * reopen, or else start a drain (counted as one active invalidation) that the last fast
 * end, or the next locked start, finishes (finish_drain_locked()).
 *
 * Every access here is seq_cst in the C++ code, so spin's interleaving of single accesses
 * is the right model. Each access to a variable that some process reads or writes without
 * the domain mutex (the counts, closed, in_tree, seq, nseq) is a step of its own; accesses
 * to variables only touched under the mutex (nactive, draining, deferred) are folded into
 * the neighbouring step.
 *
 * Processes and bounds (each invalidator runs once, ROUNDS times with -DROUNDS=n; the
 * search is exhaustive):
 *   Inserter   insert(N), then read_begin() of N. read_begin() returning is the moment the
 *              driver may fault device pages in.
 *   Inv(0)     an invalidation covering N's interval and, by a nondeterministic choice,
 *              also notifier M, which is in the walked tree from the start. Covering M, it
 *              meets a walked notifier, so it takes the locked path with a hit: that makes
 *              insert(N) a deferred insert and exercises apply_deferred_locked() and its
 *              drain.
 *   Inv(1)     an invalidation covering N only.
 *   Each invalidation: fast start (count itself in its shard; if the path is open and its
 *   range meets no walked notifier, it is a fast invalidation and calls nothing), or, if
 *   the path is closed or it met a notifier, it takes its count back and starts locked
 *   (finish a drain, count itself active, make seq odd and call N if N is walked); then
 *   the matching end (fast end: uncount, and if the path is closed finish a drain under
 *   the mutex; locked end: end_locked()).
 * Shards: one, shared by both invalidations; -DSHARDS=2 gives each its own (the counts
 * are then read one shard at a time, as fast_in_flight() does). The domain sequence starts
 * at 2; each busy period adds 2.
 * Size: 150,179 states (0.1 s for pan); -DROUNDS=2: 1.0 million states (0.7 s);
 * -DROUNDS=3: 3.4 million (2.2 s, not run by default). Compiling pan takes about 1.4 s.
 * pan lists end_locked()'s "applied = 1" for a last end with nothing deferred as unreached
 * in three of its four copies: those are the ones inside finish_drain(), and a drain
 * always has the insert pending.
 *
 * Checked:
 *   - When read_begin() of N returns (insert(N) has returned), no invalidation is in
 *     flight that did not, and will not, call N. An invalidation that has decided not to
 *     call N (a fast one, or a locked one that found N not walked) is flagged `nocall`
 *     from that decision to its end; read_begin() asserts that no flag is set. Every
 *     invalidation that was in flight when read_begin() returned, decided or not, must
 *     have called N by its end.
 *   - An invalidation whose start began while N was already walked calls N.
 *   - A call of N passes the domain sequence, odd (the tree is frozen while it is odd).
 *   - At each unlock: a drain is pending only with the path closed, the deferred insert
 *     pending, seq odd and the drain counted in active; a deferred insert keeps seq odd.
 *   - End states: no process blocks forever (pan's own invalid-end-state check; there is
 *     no never claim here). init checks the final state: seq even, nothing active, no
 *     drain, the path open, every count zero, nothing deferred, N walked, mutex free.
 *
 * Broken variants (spin must find an error):
 *   -DBROKEN_NO_CLOSE        insert() and the apply first look at the counts with the path
 *                            open, and publish N without ever closing the path if they are
 *                            zero (they close, look again and drain only if not): a fast
 *                            start can count itself and read the path open just after the
 *                            look, then read N as not walked, just before the publish.
 *   -DBROKEN_NO_COUNT_CHECK  insert() publishes N at once whenever no locked invalidation
 *                            is active, without closing or looking at the counts (the
 *                            naive fast path).
 *   -DBROKEN_APPLY_NO_CHECK  apply_deferred_locked() closes and publishes without looking
 *                            at the counts: the last locked end ignores fast invalidations
 *                            in flight.
 *   -DBROKEN_END_NO_RECHECK  fast_end() never takes the mutex to finish a drain: when no
 *                            locked start comes along, the drain never ends and
 *                            read_begin() waits forever (an invalid end state).
 *
 * Other options (each must verify):
 *   -DSHARDS=2        two shards, one per invalidation.
 *   -DUNDO_UNLOCKED   a fast start that does not stay fast takes its count back with a bare
 *                     decrement, as fast_start() in domain.cc does, and leaves finishing a
 *                     drain to the locked start that follows. By default the undo is a full
 *                     fast end (it also finishes a drain if the path is closed).
 *   -DWAIT_LOCKFREE   read_begin() waits for seq to change without the mutex, so it may
 *                     return at any seq change, even inside another critical section (a
 *                     stronger check; lost wake-ups are then not modelled).
 *   -DROUNDS=n        each invalidator runs n invalidations in a row, so some start after
 *                     read_begin() returned, or while a drain is pending.
 */

#ifndef SHARDS
#define SHARDS 1
#endif

#define NINV 2

/* Invalidations each invalidator runs, one after the other. */
#ifndef ROUNDS
#define ROUNDS 1
#endif
#define odd(x) ((x) & 1)

/* ---- the domain ---- */
byte fast[SHARDS];  /* fast_[s].active: fast starts counted in shard s */
bit  closed;        /* fast_closed_ (written under mu) */
byte mu;            /* mu_: 0 free, else holder's _pid + 1 */
byte nactive;       /* active_ (under mu): locked invalidations, plus one for a drain */
bit  draining;      /* draining_ (under mu) */
byte seq = 2;       /* seq_ (written under mu, read by read_begin() without it) */
bit  deferred;      /* deferred_ holds the insert of N (under mu) */
bit  in_tree;       /* N is in the walked tree (written under mu, read by fast starts) */
byte wakes;         /* wq_: notify_all() bumps it */

/* ---- notifier N ---- */
byte nseq;          /* invalidate_seq_ */

/* ---- ghosts: read only by the checks ---- */
bit  nocall[NINV];     /* in flight, and decided not to call N */
bit  inflight[NINV];   /* between its first step (the count) and its end */
bit  called[NINV];     /* it called N */
bit  tree_at_start[NINV];  /* N was walked when its start began */
bit  live_at_ret[NINV];    /* it was in flight when read_begin() returned */
byte done;

inline lock() {
  atomic { mu == 0 -> mu = _pid + 1 }
}

/* The state every critical section leaves behind. */
inline unlock() {
  atomic {
    assert(mu == _pid + 1);
    assert(!draining || (closed && deferred && odd(seq) && nactive >= 1));
    assert(!deferred || odd(seq));
    mu = 0
  }
}

/* CondVar::wait(mu): dropping the mutex and sleeping are one step; it wakes on a
   notify_all() after that and takes the mutex again. */
inline cv_wait() {
  atomic { assert(mu == _pid + 1); g = wakes; mu = 0 };
  atomic { wakes != g && mu == 0 -> mu = _pid + 1 }
}

/* fast_in_flight() == 0: one load per shard. */
inline read_counts() {
  z = (fast[0] == 0);
#if SHARDS > 1
  z = z && (fast[1] == 0)
#endif
}

/* close_fast_path_locked(), under mu: close the path, then z = no fast invalidation in
   flight. Every later fast start then reads the path closed, or counted itself before this
   look at the counts. */
inline close_and_count(in_apply) {
#ifdef BROKEN_NO_CLOSE
  /* An optimistic first look: nothing in flight, so publish without closing. A fast start
     that counts itself after this look reads the path open and misses the publish. */
  read_counts();
  if
  :: !z -> closed = 1; read_counts()
  :: else
  fi
#else
  closed = 1;
#ifdef BROKEN_APPLY_NO_CHECK
  if
  :: in_apply -> z = 1  /* the apply publishes whatever is in flight */
  :: else -> read_counts()
  fi
#else
  read_counts()
#endif
#endif
}

/* N becomes walked: a step of its own, fast starts read in_tree without the mutex. */
inline publish() {
  in_tree = 1
}

/* apply_deferred_locked() with the insert of N pending, under mu. applied = 0: a drain was
   started instead, seq stays odd and the insert stays pending. */
inline apply_deferred() {
  close_and_count(1);
  if
  :: z ->
    publish();
    closed = 0
  :: else ->
    atomic { draining = 1; nactive = 1 }
  fi;
  if
  :: z -> atomic { deferred = 0; applied = 1 }
  :: else
  fi;
  z = 0
}

/* end_locked(), under mu: the last end makes seq even, after applying the deferred insert
   (unless that started a drain). */
inline end_locked() {
  nactive--;
  if
  :: nactive == 0 && odd(seq) ->
    if
    :: deferred -> apply_deferred()
    :: else -> applied = 1
    fi;
    if
    :: applied -> atomic { seq++; wakes++; applied = 0 }  /* notify_all() */
    :: else
    fi
  :: else
  fi
}

/* finish_drain_locked(), under mu. */
inline finish_drain() {
  if
  :: draining ->
    read_counts();
    if
    :: z -> z = 0; draining = 0; closed = 0; end_locked()  /* reopened, as the code does */
    :: else -> z = 0
    fi
  :: else
  fi
}

/* fast_end(shard): uncount; a fast invalidation that decided not to call N is over. If
   the path is closed, a drain may be waiting for this count: finish it. */
inline fast_end() {
  atomic { fast[sh]--; nocall[id] = 0; inflight[id] = 0 }
#ifndef BROKEN_END_NO_RECHECK
  if
  :: closed ->
    lock();
    finish_drain();
    unlock()
  :: else
  fi
#endif
}

proctype Inv(byte id; byte sh) {
  bit m;          /* the range also covers M (always walked) */
  bit c, hit, fastpath, t;
  bit z, applied; /* used by the inlines */
  byte g, cur, round;

again:
  if
  :: id == 0 -> if :: m = 1 :: m = 0 fi
  :: else
  fi;

  /* ---- fast_start(shard, range) ---- */
  atomic {
    fast[sh]++;
    inflight[id] = 1;
    tree_at_start[id] = in_tree
  };
  c = closed;
  if
  :: !c ->
    /* any_walked_overlap(range): a lock-free look at the walked tree */
    atomic {
      t = in_tree;
      if
      :: m || t -> hit = 1
      :: else -> fastpath = 1; nocall[id] = 1   /* kFast: calls nothing */
      fi
    }
  :: else
  fi;

  if
  :: fastpath ->
    /* ... the CPU page tables change ...; invalidate_range_end(): */
    fast_end()
  :: else ->
    /* Not fast after all: take the count back. By default this is a whole fast end: if
       the path is closed, finish a drain this count may have held up. */
    fast[sh]--;
#ifndef UNDO_UNLOCKED
    if
    :: closed -> lock(); finish_drain(); unlock()
    :: else
    fi;
#endif

    /* ---- start_interval_part(range, hit) ---- */
    lock();
    finish_drain();
    atomic {
      nactive++;
      t = in_tree;      /* stable: written only under mu, which we hold */
      if
      :: hit || m || t -> seq = seq | 1; cur = seq
      :: else
      fi;
      if
      :: !t -> nocall[id] = 1
      :: else
      fi
    };
    unlock();
    /* call_interval_notifiers(): after the unlock; the tree is frozen while seq is odd. */
    if
    :: t ->
      atomic {
        assert(odd(cur) && cur == seq && in_tree);
        nseq = cur;     /* N's invalidate(range, cur): set_seq(cur) */
        called[id] = 1
      }
    :: else
    fi;

    /* ... the CPU page tables change ...; invalidate_range_end(): */
    lock();
    atomic { nocall[id] = 0; inflight[id] = 0 };
    end_locked();
    unlock()
  fi;

  /* Every invalidation that was in flight when read_begin() returned, or that began
     with N walked, called N. */
  atomic {
    assert(!live_at_ret[id] || called[id]);
    assert(!tree_at_start[id] || called[id]);
    round++;
    m = 0; c = 0; hit = 0; fastpath = 0; t = 0; cur = 0;
    called[id] = 0; tree_at_start[id] = 0; live_at_ret[id] = 0
  };
  if
  :: round < ROUNDS -> goto again
  :: else
  fi;
  done++
}

/* read_begin() has returned: no invalidation in flight that will not call N. */
inline returned() {
  assert(!nocall[0] && !nocall[1]);
  live_at_ret[0] = inflight[0];
  live_at_ret[1] = inflight[1]
}

proctype Inserter() {
  bit z, applied;
  byte g, s;

  /* ---- insert(N) ---- */
  lock();
  if
  :: nactive > 0 ->
    /* Deferred: an active invalidation may cover N without having seen it. */
    seq = seq | 1;
    atomic { nseq = seq; deferred = 1 }
  :: else ->
#ifdef BROKEN_NO_COUNT_CHECK
    z = 1;
#else
    close_and_count(0);
#endif
    if
    :: z ->
      nseq = seq - 1;
      publish();
#if !defined(BROKEN_NO_COUNT_CHECK)
      closed = 0
#endif
    :: else ->
      /* start_drain_locked(); then the deferred insert */
      atomic { draining = 1; nactive = 1 };
      seq = seq | 1;
      atomic { nseq = seq; deferred = 1 }
    fi;
    z = 0
  fi;
  unlock();

  /* ---- read_begin() of N ---- */
  s = nseq;
  if
  :: atomic { s != seq -> returned() }   /* the fast path */
  :: else ->
#ifdef WAIT_LOCKFREE
    atomic { seq != s -> returned() }
#else
    /* wait_for_seq_change(s) */
    lock();
    do
    :: atomic { mu == _pid + 1 && seq != s -> returned(); mu = 0 }; break
    :: mu == _pid + 1 && seq == s -> cv_wait()
    od
#endif
  fi;
  done++
}

init {
  atomic {
    run Inserter();
    run Inv(0, 0);
#if SHARDS > 1
    run Inv(1, 1)
#else
    run Inv(1, 0)
#endif
  }
  done == NINV + 1;
  /* Final state: idle, even, open, nothing counted or deferred, N walked. */
  assert(mu == 0 && nactive == 0 && !draining && !closed && !odd(seq) && !deferred);
  assert(fast[0] == 0);
#if SHARDS > 1
  assert(fast[1] == 0);
#endif
  assert(in_tree && !nocall[0] && !nocall[1] && !inflight[0] && !inflight[1])
}
