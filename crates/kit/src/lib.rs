//! The platform every Orderly service is built on: server, client channels, database pools, telemetry and resilience layers. It knows nothing of users or orders.
