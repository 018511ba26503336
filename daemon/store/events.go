package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Event is one entry of the event log: a state change, a takeover, a Core
// going up or down, with its reason.
type Event struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`    // e.g. core.down, vip.master, daemon.start
	Subject string    `json:"subject"` // e.g. core1, sip
	Message string    `json:"message"`
}

// Append adds e to the event log (Seq and, if zero, Time are set here),
// dropping the oldest entries beyond the ring size.
func (s *Store) Append(e Event) (Event, error) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketEvents))
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.Seq = seq
		data, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if err := b.Put(seqKey(seq), data); err != nil {
			return err
		}
		// Trim the ring: keys are sequence numbers in order.
		if seq > uint64(s.maxEvents) {
			c := b.Cursor()
			for k, _ := c.First(); k != nil && string(k) <= string(seqKey(seq-uint64(s.maxEvents))); k, _ = c.Next() {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return e, s.noteErr(fmt.Errorf("store append event: %w", err))
	}
	s.noteErr(nil)
	return e, nil
}

// Events returns up to limit of the most recent events, oldest first.
// Only events with Seq > after are returned (0: from the start).
func (s *Store) Events(limit int, after uint64) ([]Event, error) {
	var out []Event
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucketEvents)).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("event %x: %w", k, err)
			}
			if e.Seq <= after {
				break
			}
			out = append(out, e)
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if err != nil {
		return nil, fmt.Errorf("store events: %w", err)
	}
	return out, nil
}
