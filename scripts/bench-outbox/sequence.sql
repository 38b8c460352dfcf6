-- What EventRepository.sequence() does, for pgbench: number committed events in write
-- order under the counter row's lock, then pause as the service's EventFeed does
-- between runs (EventFeed.runInterval).
BEGIN;
SELECT last_id FROM event_counter FOR UPDATE;
UPDATE events e SET id = (SELECT last_id FROM event_counter) + b.n
FROM (SELECT seq, row_number() OVER (ORDER BY seq) AS n
      FROM (SELECT seq FROM events WHERE id IS NULL ORDER BY seq LIMIT 1000) AS oldest) AS b
WHERE e.seq = b.seq;
UPDATE event_counter SET last_id = coalesce((SELECT max(id) FROM events), last_id);
COMMIT;
\sleep 20 ms
