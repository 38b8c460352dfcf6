-- Failed logins per email, shared by every `stockroom serve` instance, so that the
-- per-email slowdown of password guessing holds across instances behind a balancer: a
-- guesser spreading attempts over N instances is slowed as if they went to one.
--
-- Keyed by SHA-256 of the normalized email: the emails guessers try (mostly unknown ones)
-- are not kept in clear. Every attempt counts from the moment it starts (parallel ones
-- too); a successful login deletes its row; rows idle for longer than the throttle's
-- memory are pruned by the instances.
CREATE TABLE login_failures (
    email_hash      bytea PRIMARY KEY CONSTRAINT login_failures_hash_length CHECK (octet_length(email_hash) = 32),
    failures        integer NOT NULL CONSTRAINT login_failures_positive CHECK (failures > 0),
    last_failed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_by_age ON login_failures (last_failed_at);
