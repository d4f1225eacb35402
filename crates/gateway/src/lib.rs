//! The REST/JSON gateway in front of Orderly's gRPC services.
