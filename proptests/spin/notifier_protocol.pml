/*
 * proptests/spin/notifier_protocol.pml
 *
 * A spin model of the NotifierDomain sequence protocol (notifier/domain.cc) and of the
 * driver side of it (notifier/interval_notifier.h): the domain sequence, the active
 * invalidation count, the deferred insert/remove list applied by the last
 * invalidate_range_end(), remove() waiting for its deferred erase under the domain mutex
 * (the 2022 kernel fix, R3), and a device fault path (read_begin / walk / driver lock /
 * read_retry / install) mirroring one CPU page that invalidations change.
 *
 * Processes and bounds (each runs once; the search is exhaustive):
 *   Inv(0), Inv(1)  two invalidations (NINV, 3 with -DNINV=3). Each: start (count itself
 *                   active, make the sequence odd if its range meets a walked notifier, call
 *                   those), change the CPU page if its range covers it, end (the last end
 *                   applies the deferred list, makes the sequence even, wakes waiters).
 *                   Range: {N0}, {N1} or {N0, N1}, picked nondeterministically (fix one with
 *                   -DINV0_MASK=m / -DINV1_MASK=m; a third invalidation covers both).
 *   Fault           the driver of notifier N0, whose interval holds the CPU page: insert(N0),
 *                   NFAULTS (2) device faults, each retried while read_retry() says so (at
 *                   most once per invalidation), then device teardown and remove(N0).
 *   Churn           insert(N1), remove(N1): a notifier with no device, racing the rest.
 * Values: the CPU page starts at 0 and each invalidation covering it adds 1 (0..2); the
 * domain sequence starts at 2 and stays below 8.
 * Size (2 invalidations, 2 faults): 2.3 million states, ~2 s for pan. -DNINV=3 with fixed
 * ranges (INV0_MASK=3, INV1_MASK=3): 16.6 million states, ~18 s (not run by default).
 *
 * Checked (docs/DESIGN.md section 3):
 *   I1  ltl `inv`: a started invalidation that met a walked notifier keeps the sequence
 *       odd; the sequence is odd exactly while the current busy period (nactive > 0) had
 *       such an invalidation or a deferred insert, except inside the end's apply section;
 *       set_state() asserts the walked set changes only while the sequence is even or in
 *       that section.
 *   I2  end: odd -> even only with nactive == 0 and under the mutex; the list is empty
 *       when the mutex is dropped (it is a queue popped from its head: FIFO).
 *   I4  (a by-product) every cur_seq passed to invalidate() is odd and is the domain sequence.
 *   I5  each invalidation calls exactly the walked notifiers of its range present at its
 *       start, each once, and never a deferred insert.
 *   I6  read_retry(seq) is true if an invalidation reached N0 after read_begin() returned,
 *       and only if one reached it after read_begin() loaded seq (the second clause is the
 *       honest form of "iff": an invalidation racing read_begin() itself may cause a retry);
 *       check_retry() true implies read_retry() true.
 *   I7  read_begin() does not return while an invalidation is still active that had
 *       reached N0, or was active when N0 was inserted, when read_begin() began.
 *   I8  no invalidate() of a notifier after its remove() returned, and no deferred op on it
 *       either (what R3 did: the kernel then touched freed memory); remove() returns only
 *       once its notifier is out of the tree and off the deferred list; removing a
 *       deferred insert cancels it without waiting.
 *   Coherence (I17 for one page), ltl `inv`: while no invalidation covering the page is
 *       active, the device PTE is absent or equals the CPU page.
 *   End states: no process blocks forever (lost wake-ups, waits that never end: init's
 *       timeout branch, since a never claim turns pan's own end-state check off), and init
 *       checks the final state.
 *
 * Broken variants (spin must find an error):
 *   -DBROKEN_R3            remove() as before the 2022 kernel fix: it queues its erase, drops
 *                          the mutex and waits lock-free for the sequence to change; the end
 *                          makes the sequence even before walking the deferred list (the
 *                          kernel's order). remove() returns with its erase still queued.
 *                          Both halves are needed: with our order (apply, then even) the
 *                          lock-free wait alone happens to be safe in this model.
 *   -DBROKEN_RETRY         read_retry() ignores set_seq(): always "no retry".
 *   -DBROKEN_DEFER_INSERT  a deferred insert gives the notifier seq - 1, as an immediate one
 *                          does, so its first read_begin() does not wait for the invalidations
 *                          that were active when it was inserted (I7).
 * With -DOUTCOMES_ONLY the protocol-step assertions (check()) are off; every broken variant
 * must still fail, on coherence or on a use of a removed notifier.
 *
 * Atomicity: a critical section of the domain mutex is one atomic step when nothing it
 * writes can be read without the mutex in an intermediate state that matters: the only
 * lock-free readers are invalidation walks (state), read_begin() (seq, invalidate_seq) and
 * the CPU walk (page). The end's section that applies the deferred list is split into one
 * step per op, because that window is exactly what R3 is about. The driver lock's two
 * sections (invalidate()'s set_seq + clear, the fault's read_retry + install) are one step
 * each for the same reason: nothing else reads the device PTE.
 */

#define NONE 255  /* device PTE absent */

/* IntervalNotifier::State */
#define S_NEW      0
#define S_DEFER    1  /* kDeferredInsert: in the tree find() reads, not walked yet */
#define S_LIVE     2
#define S_REMOVING 3  /* remove() began; still walked until the erase is applied */
#define S_REMOVED  4

#define odd(x)    ((x) & 1)

#define walked(s) ((s) == S_LIVE || (s) == S_REMOVING)
#define bitof(n)  (1 << (n))

/* check(): a protocol-step assertion. -DOUTCOMES_ONLY turns these off, leaving only the
   outcomes a user would see (coherence, a callback or a list op on a notifier whose
   remove() returned, a deadlock, the final state), to show that each broken variant is a
   real bug and not only a tripped bookkeeping assertion. */
#ifdef OUTCOMES_ONLY
#define check(x)  skip
#define I1_HOLDS  1
#else
#define check(x)  assert(x)
#define I1_HOLDS  ((hot == 0 || odd(seq)) && (ending || odd(seq) == busy_hit))
#endif

/* Deferred-list entries: 0 = empty slot. */
#define DQ_INS(n) ((n) + 1)
#define DQ_REM(n) ((n) + 3)

/* Invalidation ranges as notifier masks: bit 0 = N0's interval (holds the CPU page),
   bit 1 = N1's interval. 0 (the default) = the invalidation picks {N0}, {N1} or {N0, N1}
   nondeterministically. */
#ifndef INV0_MASK
#define INV0_MASK 0
#endif
#ifndef INV1_MASK
#define INV1_MASK 0
#endif
#define PAGE 1

/* Invalidations (2, or 3 with -DNINV=3: the third covers N0 and N1). */
#ifndef NINV
#define NINV 2
#endif

/* Device faults the driver serves (each retried as often as read_retry() says). */
#ifndef NFAULTS
#define NFAULTS 2
#endif

/* ---- the domain (NotifierDomain) ---- */
byte mu;          /* mu_: 0 free, else holder's _pid + 1 */
byte seq = 2;     /* seq_: odd while an invalidation that met a notifier is active */
byte nactive;     /* active_ */
byte wakes;       /* wq_: notify_all() bumps it, so a waiter can tell it was woken */
byte dq[2];       /* deferred_: at most one entry per notifier */
byte dq_len;

/* ---- the notifiers (IntervalNotifier) ---- */
byte state[2];    /* state_ */
byte iseq[2];     /* invalidate_seq_ (N0's is read by read_begin() without a lock) */

/* ---- the CPU page in N0's interval, and the device's copy of it ---- */
byte page;
byte dev = NONE;

/* ---- ghosts: what the checks need, never read by the protocol ---- */
byte inv_active;  /* mask of invalidations between their start and end sections */
byte reached0;    /* mask of invalidations whose invalidate() reached N0 */
byte at_insert0;  /* inv_active when N0 was inserted */
byte pinv;        /* active invalidations whose range covers the page */
byte hot;         /* active invalidations whose start made the sequence odd */
bit  busy_hit;    /* this busy period had a hot start or a deferred insert */
bit  ending;      /* an end holds the mutex between its last decrement and the unlock */
bit  hit_load;    /* N0 reached since read_begin() loaded its seq */
bit  hit_ret;     /* N0 reached since read_begin() returned */
bit  rm_done[2];  /* remove(n) returned */
byte done;        /* processes that ran to their end */

/* I1 and coherence in every reachable state. A safety formula: pan compiled with -DSAFETY
   reports its first violating state as an assertion failure (its warning that accept
   labels need -a concerns liveness, not this). */
#define COHERENT (pinv > 0 || dev == NONE || dev == page)
ltl inv {
  [] (I1_HOLDS && COHERENT)
}

/* set_state(): I1, the walked set changes only while the sequence is even, or in the
   end's apply section (which makes it even). */
inline set_state(n, s) {
  check(walked(state[n]) == walked(s) || !odd(seq) || ending);
  state[n] = s
}

inline dq_push(e) {
  assert(dq_len < 2);
  dq[dq_len] = e;
  dq_len++
}

/* Pops the head: the list is applied in FIFO order (I2). */
inline dq_pop(e) {
  e = dq[0];
  dq[0] = dq[1];
  dq[1] = 0;
  dq_len--
}

#define on_dq(n) (dq[0] == DQ_INS(n) || dq[0] == DQ_REM(n) || \
                  dq[1] == DQ_INS(n) || dq[1] == DQ_REM(n))

inline lock() {
  atomic { mu == 0 -> mu = _pid + 1 }
}

/* CondVar::wait(mu): drops the mutex and sleeps until a notify_all() that comes after the
   drop, then takes the mutex again. Sleeping and dropping are one step (the notifier
   needs the mutex, so no wake-up is lost in between). */
inline cv_wait(g) {
  atomic { assert(mu == _pid + 1); g = wakes; mu = 0 };
  atomic { wakes != g && mu == 0 -> mu = _pid + 1 }
}

/* NotifierDomain::insert() */
inline insert(n) {
  atomic {
    mu == 0 ->
    assert(state[n] == S_NEW);
    if
    :: nactive > 0 ->
      /* An active invalidation may cover the interval without having seen it. */
      seq = seq | 1;
#ifdef BROKEN_DEFER_INSERT
      iseq[n] = seq - 1;
#else
      iseq[n] = seq;       /* the first read_begin() waits (I7) */
#endif
      set_state(n, S_DEFER);
      dq_push(DQ_INS(n));
      busy_hit = 1;
    :: else ->
      assert(!odd(seq));
      iseq[n] = seq - 1;
      set_state(n, S_LIVE)
    fi;
    if
    :: n == 0 -> at_insert0 = inv_active
    :: else
    fi
  }
}

/* NotifierDomain::remove() */
inline remove(n, g) {
  lock();
  atomic {
    assert(state[n] == S_LIVE || state[n] == S_DEFER);
    if
    :: !odd(seq) ->
      set_state(n, S_REMOVED);           /* no invalidation is walking: erase now */
      mu = 0
    :: odd(seq) && state[n] == S_DEFER ->
      /* never walked: cancel the insert, no wait (I8) */
      if
      :: dq[0] == DQ_INS(n) -> dq[0] = dq[1]; dq[1] = 0
      :: dq[0] != DQ_INS(n) -> assert(dq[1] == DQ_INS(n)); dq[1] = 0
      fi;
      dq_len--;
      set_state(n, S_REMOVED);
      mu = 0
    :: odd(seq) && state[n] == S_LIVE ->
      set_state(n, S_REMOVING);
      dq_push(DQ_REM(n))
#ifdef BROKEN_R3
      ; g = seq; mu = 0
#endif
    fi
  };
#ifdef BROKEN_R3
  if
  :: g != 0 -> (seq != g); g = 0  /* lock-free: the sequence has moved on */
  :: else
  fi;
#else
  /* R3: "has my erase been applied" is decided under the mutex that applies it. */
  do
  :: mu == _pid + 1 && state[n] == S_REMOVED -> mu = 0
  :: mu == _pid + 1 && state[n] != S_REMOVED -> cv_wait(g)
  :: mu != _pid + 1 -> break
  od;
#endif
  atomic {
    check(state[n] == S_REMOVED && !on_dq(n));  /* I8, R3 */
    rm_done[n] = 1
  }
}

/* One invalidation: invalidate_range_start(), the CPU page change, invalidate_range_end(). */
proctype Inv(byte id; byte mask) {
  byte cur, expect, called, n, e;
  bit last;

  if
  :: mask == 0 ->
    if
    :: mask = 1
    :: mask = 2
    :: mask = 3
    fi
  :: else
  fi;

  /* start_interval_part(): count ourselves, make the sequence odd if we meet a walked
     notifier. `expect` (a ghost) is the set I5 says we must call. */
  atomic {
    mu == 0 ->
    nactive++;
    inv_active = inv_active | bitof(id);
    if
    :: mask & PAGE -> pinv++
    :: else
    fi;
    expect = 0;
    for (n : 0 .. 1) {
      if
      :: (mask & bitof(n)) && walked(state[n]) -> expect = expect | bitof(n)
      :: else
      fi
    }
    if
    :: expect != 0 ->
      seq = seq | 1;
      cur = seq;
      hot++;
      busy_hit = 1
    :: else
    fi;
    n = 0
  }

  /* call_interval_notifiers(): a lock-free walk; a notifier's state is read, then it is
     called (two steps). */
  if
  :: cur != 0 ->
    for (n : 0 .. 1) {
      if
      :: (mask & bitof(n)) && walked(state[n]) ->
        /* IntervalNotifier::invalidate(range, cur) */
        atomic {
          check(odd(cur) && cur == seq);                    /* I4 */
          assert(!rm_done[n]);                              /* I8 */
          check((expect & bitof(n)) && !(called & bitof(n)));  /* I5 */
          called = called | bitof(n);
          if
          :: n == 0 ->
            /* the driver: lock; set_seq(cur); clear device PTEs; unlock */
            iseq[0] = cur;
            reached0 = reached0 | bitof(id);
            hit_load = 1;
            hit_ret = 1;
            dev = NONE
          :: else ->
            iseq[n] = cur
          fi
        }
      :: else
      fi
    }
  :: else
  fi;
  n = 0;

  /* The CPU page table changes between start and end. */
  if
  :: mask & PAGE -> page++
  :: else
  fi;

  /* invalidate_range_end() -> end_locked() */
  atomic {
    mu == 0 -> mu = _pid + 1;
    check(called == expect);                                  /* I5: each exactly once */
    nactive--;
    inv_active = inv_active & ~bitof(id);
    if
    :: mask & PAGE -> pinv--
    :: else
    fi;
    if
    :: cur != 0 -> hot--
    :: else
    fi;
    if
    :: nactive == 0 && odd(seq) -> last = 1; ending = 1
    :: else -> mu = 0
    fi;
    cur = 0; expect = 0; called = 0
  };
  if
  :: last ->
#ifdef BROKEN_R3
    atomic { seq++; busy_hit = 0 };   /* the kernel's order: even first, then the list */
#endif
    /* I2: the deferred ops, in FIFO order, in this critical section. */
    do
    :: dq_len > 0 ->
      atomic {
        dq_pop(e);
        /* R3's harm: the domain touches a notifier whose remove() returned (freed). */
        assert(!rm_done[(e - 1) % 2]);
        if
        :: e == DQ_INS(0) || e == DQ_INS(1) -> set_state(e - 1, S_LIVE)
        :: else -> set_state(e - 3, S_REMOVED)
        fi;
        e = 0
      }
    :: else -> break
    od;
    atomic {
      check(mu == _pid + 1 && nactive == 0 && dq_len == 0);  /* I2 */
#ifndef BROKEN_R3
      check(odd(seq));
      seq++;
      busy_hit = 0;
#endif
      ending = 0;
      wakes++;       /* notify_all() */
      mu = 0;
      last = 0
    }
  :: else
  fi;
  done++
}

/* The driver of N0: insert, NFAULTS device faults, teardown. */
proctype Fault() {
  byte s, v, must, g, faults;
  bit chk, retry;

  insert(0);

again:
  /* IntervalNotifier::read_begin(): load our seq, then the domain's. */
  atomic {
    s = iseq[0];
    hit_load = 0;
    must = inv_active & (reached0 | at_insert0)   /* I7: what we must not return during */
  };
  if
  :: s != seq          /* fast path */
  :: else ->           /* wait_for_seq_change(s), under the mutex */
    lock();
    do
    :: mu == _pid + 1 && seq != s -> mu = 0
    :: mu == _pid + 1 && seq == s -> cv_wait(g)
    :: mu != _pid + 1 -> break
    od;
    g = 0
  fi;
  atomic {
    check((inv_active & must) == 0);  /* I7 */
    must = 0;
    hit_ret = 0
  };

  /* Walk the CPU page table without the driver lock; check_retry() as a long walk would. */
  v = page;
  chk = (iseq[0] != s);

  /* lock(driver); if read_retry(seq) retry; else install; unlock(driver) */
  atomic {
#ifdef BROKEN_RETRY
    retry = 0;
#else
    retry = (iseq[0] != s);
#endif
    check(!hit_ret || retry);   /* I6: no invalidation since read_begin() is missed */
    check(!retry || hit_load);  /* I6: no retry without one */
    check(!chk || retry);       /* I6: check_retry() implies read_retry() */
    if
    :: !retry -> dev = v
    :: else
    fi;
    s = 0; v = 0; chk = 0
  };
  if
  :: retry -> retry = 0; goto again
  :: else
  fi;
  faults++;
  if
  :: faults < NFAULTS -> goto again
  :: else
  fi;

  /* Device teardown: stop the device (clear its PTE under the driver lock), then
     unsubscribe. */
  dev = NONE;
  remove(0, g);
  done++
}

proctype Churn() {
  byte g;
  insert(1);
  remove(1, g);
  done++
}

init {
  atomic {
    run Inv(0, INV0_MASK);
    run Inv(1, INV1_MASK);
#if NINV > 2
    run Inv(2, 3);
#endif
    run Fault();
    run Churn()
  }
  /* End states (the never claim turns off pan's own check): if every process is
     blocked before all have finished, only timeout can move. */
  if
  :: done == NINV + 2
  :: timeout -> assert(done == NINV + 2)  /* deadlock: a wait that never ends, a lost wake-up */
  fi;
  /* Final state: idle, even, nothing deferred, both notifiers gone. */
  assert(nactive == 0 && !odd(seq) && dq_len == 0 && mu == 0);
  assert(state[0] == S_REMOVED && state[1] == S_REMOVED);
  assert(hot == 0 && pinv == 0 && inv_active == 0)
}
