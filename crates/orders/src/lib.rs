//! OrderService: places orders by calling users, payments and delivery over gRPC, and compensates failures.
