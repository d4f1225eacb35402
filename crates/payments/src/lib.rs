//! PaymentService: charges and refunds, exactly once per idempotency key.
