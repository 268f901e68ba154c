/*
 * proptests/spin/reclaim_handoff.pml
 *
 * A spin model of how a removed interval notifier's memory is handed to a grace period
 * (notifier/domain.cc: remove(), end_locked(), find()) when the domain holds the only
 * reference to it: the deferred remove, where one thread's invalidate_range_end() applies
 * the erase and the waiting remove() finishes.
 *
 * Processes (each runs once; the search is exhaustive):
 *   Finder x2  find(): a read section in which it loads the published root and, if the
 *              notifier is in that snapshot, reads its state and owner and takes a
 *              reference. Each does this twice.
 *   Ender      the last invalidate_range_end(): builds the erase in a batch, publishes the
 *              new root (without the notifier), marks the notifier erased, wakes remove().
 *   Remover    remove(), waiting under the domain mutex: once the notifier is erased it
 *              takes the domain's reference and the grab out of it and marks it free (its
 *              last accesses), then hands the reference to srcu_.call().
 *   Worker     the SRCU worker: once a grace period has passed after the hand-off, it
 *              drops the reference, which frees the notifier (no finder kept one).
 *
 * The grace period is modelled as in release_unregister.pml: a bit per finder in rs_in
 * while inside a read section and a toggle flipped at each entry; the hand-off snapshots
 * both and the worker waits until every finder inside then has left that section.
 *
 * Checked (docs/DESIGN.md section 3):
 *   I24  nothing reads the notifier after it was freed: not a finder that met it in a
 *        snapshot, not remove() finishing with it. A finder's reference keeps it alive.
 *   End states: no process blocks forever.
 *
 * Broken variants (spin must find an error):
 *   -DBROKEN_HANDOFF_BEFORE_PUBLISH  the end hands the reference off inside the batch,
 *        before it publishes the erase (the first design): a finder that enters its
 *        read section after the hand-off still loads the old root.
 *   -DBROKEN_TOUCH_AFTER_HANDOFF     remove() hands the reference off and then touches
 *        the notifier (the second design): the worker can free it in between.
 */

#define NF 2

bit  in_root = 1;   /* the published root holds the notifier */
bit  erased;        /* state kErased: remove() may finish */
bit  handed_off;    /* srcu_.call() queued the reference drop */
bit  freed;
byte refs = 1;      /* the domain's reference, plus those finders took */
byte rs_in, rs_tog;
byte snap_in, snap_tog;  /* the read sections in progress at the hand-off */
byte done;

inline hand_off() {
  atomic { snap_in = rs_in; snap_tog = rs_tog; handed_off = 1 }
}

proctype Finder(byte me) {
  byte i;
  bit sees;
  for (i : 1 .. 2) {
    atomic { rs_in = rs_in | (1 << me); rs_tog = rs_tog ^ (1 << me) };
    sees = in_root;             /* the acquire load of the root */
    if
    :: sees ->
      assert(!freed);           /* I24: reads state and owner of the entry */
      atomic { assert(!freed); refs++ };  /* try_get() */
      atomic { refs--; if :: refs == 0 -> freed = 1 :: else fi }  /* drops the Ref */
    :: else
    fi;
    rs_in = rs_in & ~(1 << me)
  }
  done++
}

proctype Ender() {
#ifdef BROKEN_HANDOFF_BEFORE_PUBLISH
  hand_off();
#endif
  in_root = 0;                  /* the batch publishes the new root */
  erased = 1;                   /* under the domain mutex, then notify */
  done++
}

proctype Remover() {
  (erased);                     /* woken, back under the mutex */
#ifdef BROKEN_TOUCH_AFTER_HANDOFF
  hand_off();
#endif
  assert(!freed);               /* I24: moves domain_ref_ and grab_ out, stores kFree */
#if !defined(BROKEN_HANDOFF_BEFORE_PUBLISH) && !defined(BROKEN_TOUCH_AFTER_HANDOFF)
  hand_off();                   /* after the mutex: srcu_.call() with the reference */
#endif
  done++
}

proctype Worker() {
  (handed_off);
  (rs_in & snap_in & ~(rs_tog ^ snap_tog)) == 0;  /* the grace period */
  atomic { refs--; if :: refs == 0 -> freed = 1 :: else fi };
  done++
}

init {
  atomic {
    run Finder(0);
    run Finder(1);
    run Ender();
    run Remover();
    run Worker()
  }
  if
  :: done == 5
  :: timeout -> assert(done == 5)  /* a process blocked for good */
  fi;
  assert(freed)  /* the reference was dropped exactly when the last holder let go */
}
