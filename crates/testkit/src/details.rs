//! The google.rpc details of an error status, as a test reads them.

use tonic::Status;
use tonic_types::StatusExt;

/// The fields named by a status's `google.rpc.BadRequest`, in order.
pub fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The `google.rpc.ErrorInfo` reason of a status.
pub fn reason(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|info| info.reason)
}

/// The whole `google.rpc.ErrorInfo` of a status: reason, domain and metadata.
pub fn error_info(status: &Status) -> Option<tonic_types::ErrorInfo> {
    status.get_details_error_info()
}
