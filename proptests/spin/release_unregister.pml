/*
 * proptests/spin/release_unregister.pml
 *
 * A spin model of whole-space notifiers (notifier/whole_space.cc, notifier/notifier.h):
 * the domain's teardown release() against unregister_notifier() against get_notifier() /
 * put_notifier(), with callbacks running in SRCU read sections and the frees of put
 * notifiers run after a grace period.
 *
 * Notifiers: A (0) is registered and unregistered by its owner; 1 and 2 are instances of
 * the one get/put notifier of an ops (a second instance exists only if the first was put
 * for the last time before another get).
 *
 * Processes and bounds (each runs once; the search is exhaustive):
 *   Teardown      NotifierDomain::release(): marks the domain released, then in one read
 *                 section delivers release() to every notifier on the list it loaded.
 *   Invalidator   one invalidation's whole-space callbacks: invalidate_range_start on the
 *                 listed notifiers, then invalidate_range_end on the same list: the token
 *                 carries the list and holds one read section from the start to the end.
 *   Owner         register_notifier(A), then unregister_notifier(A) (unpublish, deliver
 *                 release() unless the teardown did, synchronize()).
 *   Getter x2     get_notifier() (allocate and publish under get_mu_, or take another user
 *                 of the published one), then put_notifier(); the last put unpublishes and
 *                 starts a Reclaimer.
 *   Reclaimer     the SrcuDomain::call() queued by the last put: once the read sections in
 *                 progress at the put have ended, runs free_notifier(). At most two.
 * Size: 2.1 million states, ~1.3 s for pan.
 *
 * The grace period: each process has a bit in rs_in while inside a read section, and a bit
 * in rs_tog that flips at every entry. synchronize() (and a queued free) snapshots both and
 * waits until every process that was inside then has left that section (it is out, or its
 * toggle moved): the sections that began before, which is all SRCU promises. (A process
 * that left and came back twice meanwhile looks unchanged and is waited for too; that only
 * delays, and no process here enters more than two sections.)
 *
 * Checked (docs/DESIGN.md section 3):
 *   I12  no callback sees a notifier before alloc_notifier() completed it.
 *   I13  free_notifier() runs once per allocated instance (end state), only after its last
 *        put and once it is unpublished, never while one of its callbacks runs, and no
 *        callback starts or finishes after it.
 *   I14  release() is delivered at most once per notifier; a registered A gets it exactly
 *        once before unregister_notifier(A) returns (by the teardown or by unregister),
 *        and the loser of the race does nothing.
 *   I15  when unregister_notifier(A) returns, no callback of A runs (including a
 *        teardown release() that won the race), and none starts or finishes later.
 *   I25  the invalidation's end reaches exactly the notifiers its start reached: none gets
 *        an end without its start (one registered or got meanwhile) or a start without its
 *        end (one unregistered or put meanwhile).
 *   End states: no process blocks forever (init's timeout branch), every queued free ran.
 *
 * Registrations, gets and puts may fall between the invalidation's start and end (I28: a
 * registration publishes at once). Not modelled: the interval-notifier part of release() (notifier_protocol.pml's business), errors from
 * misuse. The domain mutex needs no variable: every one of its critical sections here is a
 * single atomic step (none waits or calls out while holding it).
 *
 * Broken variants (spin must find an error):
 *   -DBROKEN_I15  unregister_notifier() skips its synchronize(): it can return while the
 *                 teardown's release() of A, or an invalidation that loaded the old list,
 *                 is still calling A.
 *   -DBROKEN_I14  deliver_release() without its once-guard (release_delivered_): the
 *                 teardown and unregister both deliver (R7).
 *   -DBROKEN_I13  put_notifier() frees at once instead of after a grace period: an
 *                 invalidation that loaded the list before the put calls freed memory.
 *   -DBROKEN_I25  the end loads the list again in a read section of its own (the code
 *                 before tokens): a notifier unregistered between start and end misses its
 *                 end, one registered meanwhile gets an end without a start.
 */

#define A  0
#define NN 3

#define bitof(n) (1 << (n))

/* ---- the domain ---- */
bit  released;    /* released_ */
byte list;        /* notifiers_: the published list as a mask; a reader's copy is its
                     snapshot, as the pointer it loads is in the real code */
byte got;         /* the published get/put instance, 0 = none (what get_notifier() finds) */
byte get_mu;      /* get_mu_: held across alloc_notifier(); 0 free, else _pid + 1 */
byte users[NN];   /* users_ */
bit  delivered[NN];  /* release_delivered_ */
byte next_inst = 1;

/* ---- SrcuDomain ---- */
byte rs_in;       /* mask of _pids inside a read section */
byte rs_tog;      /* per _pid, flipped at each section entry */

/* ---- ghosts ---- */
bit  alloced[NN];
bit  complete[NN];
bit  freed[NN];
byte releases[NN];    /* release() callbacks delivered */
byte cbs[NN];         /* callbacks of the notifier running now */
bit  unreg_done[NN];  /* unregister_notifier() returned */
byte done;            /* Teardown, Invalidator, Owner, Getters that finished */
byte frees_queued;    /* Reclaimers started and not finished */

inline rs_lock() {
  atomic { rs_in = rs_in | bitof(_pid); rs_tog = rs_tog ^ bitof(_pid) }
}

/* Enters a read section and loads the list in it, in one step: in between, the section
   could only make a grace period wait longer. */
inline rs_lock_load(snap) {
  atomic { rs_in = rs_in | bitof(_pid); rs_tog = rs_tog ^ bitof(_pid); snap = list }
}

inline rs_unlock() {
  rs_in = rs_in & ~bitof(_pid)
}

/* SrcuDomain::synchronize(): waits for the read sections in progress when it began. */
inline synchronize(sin, stog) {
  atomic { sin = rs_in; stog = rs_tog };
  (rs_in & sin & ~(rs_tog ^ stog)) == 0;
  sin = 0;
  stog = 0
}

/* A callback of notifier n: two steps, so that anything may happen while it runs. */
inline callback(n, rel) {
  atomic {
    assert(complete[n]);                   /* I12 */
    assert(!freed[n]);                     /* I13 */
    assert(!unreg_done[n]);                /* I15 */
    cbs[n]++;
    if
    :: rel -> assert(releases[n] == 0);    /* I14: at most once */
              releases[n]++
    :: else
    fi
  };
  atomic {
    assert(!freed[n] && !unreg_done[n]);  /* I13, I15: not even still running */
    cbs[n]--
  }
}

/* NotifierDomain::deliver_release(): once, whoever comes first. `in_rs`: the caller is
   already inside a read section (the teardown), so no nested one is modelled. */
inline deliver_release(n, first, in_rs) {
  atomic {
#ifdef BROKEN_I14
    first = 1;
#else
    first = !delivered[n];
#endif
    delivered[n] = 1
  };
  if
  :: first ->
    if
    :: !in_rs -> rs_lock()
    :: else
    fi;
    callback(n, 1);
    if
    :: !in_rs -> rs_unlock()
    :: else
    fi
  :: else
  fi;
  first = 0
}

/* NotifierOps::free_notifier() */
inline free_notifier(n) {
  atomic {
    assert(alloced[n] && !freed[n]);                     /* I13: once */
    assert(users[n] == 0 && (list & bitof(n)) == 0);     /* I13: after the last put */
    assert(cbs[n] == 0);                                 /* I13: no callback running */
    freed[n] = 1
  }
}

/* The queued free: `sin`/`stog` are the read sections in progress when put_notifier()
   queued it (after unpublishing); the free waits for those to end. */
proctype Reclaimer(byte n; byte sin; byte stog) {
  atomic {
    (rs_in & sin & ~(rs_tog ^ stog)) == 0 ->
    free_notifier(n);
    frees_queued--
  }
}

/* NotifierDomain::release(), the whole-space part. */
proctype Teardown() {
  byte snap, n;
  bit first;
  released = 1;
  rs_lock_load(snap);
  for (n : 0 .. NN - 1) {
    if
    :: snap & bitof(n) -> deliver_release(n, first, 1)
    :: else
    fi
  }
  atomic { rs_unlock(); snap = 0; n = 0; done++ }
}

/* call_start_notifiers() and call_end_notifiers() of one invalidation. */
proctype Invalidator() {
  byte snap, n, started;
  rs_lock_load(snap);
  for (n : 0 .. NN - 1) {
    if
    :: snap & bitof(n) -> callback(n, 0); started = started | bitof(n)
    :: else
    fi
  }
#ifdef BROKEN_I25
  rs_unlock();
  rs_lock_load(snap);
#endif
  for (n : 0 .. NN - 1) {
    if
    :: snap & bitof(n) ->
      assert(started & bitof(n));  /* I25: no end without its start */
      callback(n, 0);
      started = started & ~bitof(n)
    :: else
    fi
  }
  assert(started == 0);  /* I25: every start got its end */
  atomic { rs_unlock(); snap = 0; n = 0; done++ }
}

proctype Owner() {
  byte sin, stog;
  bit ok, first;
  /* register_notifier(A) */
  atomic {
    complete[A] = 1;  /* the owner built A before registering it */
    if
    :: !released -> list = list | bitof(A); ok = 1
    :: else       /* kFailedPrecondition: nothing to unregister */
    fi
  };
  if
  :: ok ->
    /* unregister_notifier(A) */
    atomic { assert(list & bitof(A)); list = list & ~bitof(A) };
    deliver_release(A, first, 0);
#ifndef BROKEN_I15
    synchronize(sin, stog);
#endif
    atomic {
      assert(cbs[A] == 0);        /* I15 */
      assert(releases[A] == 1);   /* I14: delivered, by the teardown or by us */
      unreg_done[A] = 1;
      done++
    }
  :: else -> done++
  fi
}

proctype Getter() {
  byte me;

  /* get_notifier(): get_mu_, then mu_ (one step: nothing can tell them apart) */
  atomic {
    get_mu == 0 ->
    if
    :: released -> get_mu = 0                    /* kFailedPrecondition */
    :: !released && got != 0 -> me = got; users[me]++; get_mu = 0
    :: !released && got == 0 -> me = 255; get_mu = _pid + 1  /* none: allocate one */
    fi
  };
  if
  :: me == 255 ->
    /* alloc_notifier(), complete when it returns: not under mu_ (it may call into the
       domain), still under get_mu_ */
    atomic {
      alloced[next_inst] = 1;
      complete[next_inst] = 1;
      me = next_inst;
      next_inst++
    };
    atomic {
      if
      :: released -> free_notifier(me); me = 0  /* released meanwhile: never published */
      :: else -> list = list | bitof(me); got = me; users[me] = 1
      fi;
      get_mu = 0
    }
  :: else
  fi;

  /* put_notifier() */
  if
  :: me != 0 ->
    atomic {
      get_mu == 0 ->
      assert(users[me] > 0);
      users[me]--;
      if
      :: users[me] == 0 ->
        list = list & ~bitof(me);
        got = 0;
#ifdef BROKEN_I13
        free_notifier(me)
#else
        frees_queued++;
        run Reclaimer(me, rs_in, rs_tog)  /* srcu_.call(free_notifier) */
#endif
      :: else
      fi;
      me = 0;
      done++
    }
  :: else -> done++
  fi
}

init {
  byte n;
  atomic {
    run Teardown();
    run Invalidator();
    run Owner();
    run Getter();
    run Getter()
  }
  if
  :: done == 5 && frees_queued == 0
  :: timeout -> assert(done == 5 && frees_queued == 0)  /* a process blocked for good */
  fi;
  /* I14: A, if it was registered, heard release() exactly once. */
  assert(releases[A] == delivered[A]);
  /* I13: every instance allocated was freed (once: free_notifier() asserts that). */
  for (n : 1 .. NN - 1) {
    assert(alloced[n] == freed[n]);
    assert(releases[n] <= 1)
  }
}
