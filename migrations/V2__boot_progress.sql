-- sixboot inventory, schema 2: where each host's current boot is (its start, furthest
-- stage and last script fetches), from which the next boot and the stuck and loop rules
-- are decided (issue 16). A JSON object of `inventory::Progress`; '{}' reads as
-- "nothing known", as a state row written by schema 1 does.

ALTER TABLE host_states ADD COLUMN progress jsonb NOT NULL DEFAULT '{}'::jsonb;
