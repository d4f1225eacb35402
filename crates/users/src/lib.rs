//! UserService: the people who place orders, their storage and migrations.
