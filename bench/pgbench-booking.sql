-- One booking through POST /api/v1/appointments with an Idempotency-Key, statement for
-- statement as Django sends them (bench/booking.py prints the captured list): the channel and
-- its perimeter version, the key's claim in its own transaction, then the booking transaction.
-- Only the first statement is pgbench's own: it draws a free first-consultation slot.
\set k random(1, :nslots)
SELECT b.id AS sid, s.practitioner_id AS pid, s.practitioner_role_id AS rid, s.establishment_id AS eid, s.visit_type_id AS vid, extract(epoch FROM s.starts_at)::bigint AS t0, extract(epoch FROM s.ends_at)::bigint AS t1 FROM bench_first_slot b JOIN agenda_slot s ON s.id = b.id WHERE b.n = :k \gset
SELECT c.*, o.*, p.* FROM channels_channel c JOIN directory_organisation o ON o.id = c.organisation_id JOIN channels_perimeter p ON p.id = c.perimeter_id WHERE c.id = :channel;
SELECT v.id AS vsn FROM channels_perimeterversion v JOIN channels_channel c ON c.perimeter_id = v.perimeter_id WHERE c.id = :channel ORDER BY v.number DESC LIMIT 1 \gset
BEGIN;
INSERT INTO booking_idempotencykey (channel_id, key_hash, request_hash, response_status, response_body, sealed_token, created_at) VALUES (:channel, md5(random()::text) || md5(random()::text), md5(random()::text) || md5(random()::text), NULL, NULL, '', now()) RETURNING id AS kid \gset
COMMIT;
BEGIN;
SELECT * FROM agenda_slot WHERE id = :sid;
SAVEPOINT booking;
SELECT 1 AS a FROM directory_practitionerrole r JOIN directory_establishment e ON r.establishment_id = e.id WHERE e.is_active AND r.establishment_id IN (SELECT u0.establishment_id FROM channels_perimeterestablishment u0 WHERE u0.version_id = :vsn) AND r.is_active AND r.id = :rid LIMIT 1;
SELECT pg_advisory_xact_lock(4411982, :pid);
UPDATE agenda_slot SET booked = booked + 1 WHERE booked < capacity - held AND is_offered AND "overlaps" = 0 AND id = :sid;
INSERT INTO booking_appointment (patient_last_name, patient_first_name, patient_birth_date, patient_phone, patient_email, patient_language, reason, manage_token_hash, public_id, slot_id, practitioner_role_id, practitioner_id, establishment_id, visit_type_id, starts_at, ends_at, status, channel_id, perimeter_version_id, created_at, updated_at, cancelled_at, cancel_reason) VALUES ('Charge', 'Banc', '1970-01-01', '+33612345678', '', 'fr', '', md5(random()::text) || md5(random()::text), substr(md5(random()::text), 1, 16), :sid, :rid, :pid, :eid, :vid, to_timestamp(:t0), to_timestamp(:t1), 'booked', :channel, :vsn, now(), now(), NULL, '') RETURNING id AS aid \gset
UPDATE agenda_slot SET "overlaps" = "overlaps" + 1 WHERE ends_at > to_timestamp(:t0) AND practitioner_id = :pid AND starts_at < to_timestamp(:t1) AND NOT (id = :sid);
INSERT INTO booking_appointmentevent (appointment_id, action, status, channel_id, by_id, previous_starts_at, at) VALUES (:aid, 'booked', 'booked', :channel, NULL, NULL, now());
RELEASE SAVEPOINT booking;
SELECT a.*, p.*, e.*, v.* FROM booking_appointment a JOIN directory_practitioner p ON p.id = a.practitioner_id JOIN directory_establishment e ON e.id = a.establishment_id JOIN directory_visittype v ON v.id = a.visit_type_id WHERE a.public_id = (SELECT public_id FROM booking_appointment WHERE id = :aid);
UPDATE booking_idempotencykey SET response_status = 201, response_body = '{"id": "w4wh7tm8g670vv2r", "status": "booked", "starts_at": "2026-11-30T07:30:00Z", "ends_at": "2026-11-30T08:00:00Z", "local_starts_at": "2026-11-30T08:30:00+01:00", "visit_type": {"id": "mc0knc73cns0g02d", "code": "specialty-01-first", "label": "Première consultation", "duration_minutes": 30, "preparation": ""}, "practitioner": {"id": "a1b2c3d4e5f6g7h8", "rpps": "20000000012", "display_name": "Prénom1 Nom1"}, "establishment": {"id": "h8g7f6e5d4c3b2a1", "finess": "750000018", "name": "Établissement 1", "city": "Paris"}, "patient_last_name": "Charge", "patient_first_name": "Banc", "reason": ""}'::jsonb, sealed_token = md5(random()::text) WHERE id = :kid;
COMMIT;
