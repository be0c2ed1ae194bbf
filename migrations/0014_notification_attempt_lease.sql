-- A delivery attempt leases its row until `lease_until` (epoch ms) before calling the receiver, so
-- two copies of one `notify.deliver` message (a queue redelivery, a forwarded stray) never call it
-- at the same time; the attempt's outcome clears the lease (src/store/notifications.ts).
ALTER TABLE notification_deliveries ADD COLUMN lease_until INTEGER;
