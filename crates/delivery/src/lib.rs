//! DeliveryService: schedules and cancels the shipping of orders.
