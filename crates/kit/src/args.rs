//! Command-line settings (clap `Args`) whose declared defaults are also their `Default`, so that
//! a setting's default is written once, next to its flag, and code that builds a configuration
//! without a command line (tests, `orderly up`) gets the same values as a bare `orderly serve`.

use clap::{Args, Command, FromArgMatches};

/// The value of `T` when no flag is given and no environment variable is read: each field's
/// declared default.
///
/// # Panics
/// When a field of `T` has no default: a programming error that every test of a `Default` built
/// on this shows.
pub fn defaults<T: Args + FromArgMatches>() -> T {
    let command = T::augment_args(Command::new("defaults")).mut_args(|arg| arg.env(None));
    let matches = command
        .try_get_matches_from(["defaults"])
        .unwrap_or_else(|error| panic!("every setting needs a default: {error}"));
    T::from_arg_matches(&matches)
        .unwrap_or_else(|error| panic!("every setting needs a default: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Args)]
    struct Example {
        #[arg(long, env = "ORDERLY_ARGS_TEST_COUNT", default_value_t = 7)]
        count: u32,
    }

    #[test]
    fn defaults_are_the_declared_ones() {
        assert_eq!(defaults::<Example>().count, 7);
    }
}
