//! Money as integer minor units of one ISO 4217 currency. No floating point touches an amount, and
//! arithmetic is checked: an overflow is an error, never a wrapped total.

use std::fmt;

/// Why an amount was refused; the text is meant for a field violation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a currency in circulation by ISO 4217 (the code is unknown, superseded, a fund, or a
    /// special code such as XXX or gold).
    #[error("must be an ISO 4217 code of a currency in circulation, e.g. EUR")]
    BadCurrency,
    /// A negative amount.
    #[error("must not be negative")]
    Negative,
    /// Zero where something must be paid.
    #[error("must be greater than zero")]
    Zero,
    /// Amounts of different currencies were combined.
    #[error("all amounts must be in one currency")]
    MixedCurrencies,
    /// A sum or product too large to represent.
    #[error("is too large")]
    Overflow,
}

/// An ISO 4217 code of a currency in circulation (from the `iso_currency` crate's copy of the
/// standard): three upper-case letters, with minor units, not superseded, not a fund or special
/// code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Checks a currency code.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let known = iso_currency::Currency::from_code(code).filter(in_circulation);
        match (known, code.as_bytes()) {
            (Some(_), &[a, b, c]) => Ok(Self([a, b, c])),
            _ => Err(MoneyError::BadCurrency),
        }
    }

    /// Every code [`Currency::parse`] accepts, in alphabetical order (for documents that list
    /// them; found by trying every three-letter code, so call it once).
    pub fn codes() -> Vec<String> {
        let letters = b'A'..=b'Z';
        letters
            .clone()
            .flat_map(|a| letters.clone().map(move |b| [a, b]))
            .flat_map(|[a, b]| (b'A'..=b'Z').map(move |c| [a, b, c]))
            .filter_map(|code| {
                let code = std::str::from_utf8(&code).ok()?.to_owned();
                Self::parse(&code).ok().map(|_| code)
            })
            .collect()
    }

    /// The code, e.g. `EUR`.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters get in.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

/// Whether a currency is one orders may be placed in: with minor units, not superseded, not a fund
/// or special code.
fn in_circulation(currency: &iso_currency::Currency) -> bool {
    currency.exponent().is_some()
        && currency.is_superseded().is_none()
        && !currency.is_fund()
        && !currency.is_special()
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-negative amount in minor units of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    currency: Currency,
    minor: i64,
}

impl Money {
    /// Checks a currency code and a non-negative amount.
    pub fn parse(currency_code: &str, minor: i64) -> Result<Self, MoneyError> {
        let currency = Currency::parse(currency_code)?;
        if minor < 0 {
            return Err(MoneyError::Negative);
        }
        Ok(Self { currency, minor })
    }

    /// Like [`Money::parse`], but zero is refused too: for amounts that must be paid.
    pub fn parse_positive(currency_code: &str, minor: i64) -> Result<Self, MoneyError> {
        let money = Self::parse(currency_code, minor)?;
        if money.minor == 0 {
            Err(MoneyError::Zero)
        } else {
            Ok(money)
        }
    }

    /// The amount as an error's metadata carries it: `EUR 3997` (currency, space, minor units).
    pub fn to_metadata(&self) -> String {
        format!("{} {}", self.currency, self.minor)
    }

    /// Reads an amount written by [`Money::to_metadata`].
    pub fn from_metadata(text: &str) -> Option<Self> {
        let (currency, minor) = text.split_once(' ')?;
        Self::parse(currency, minor.parse().ok()?).ok()
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount in minor units.
    pub fn minor(&self) -> i64 {
        self.minor
    }

    /// The sum of two amounts of one currency.
    pub fn checked_add(self, other: Self) -> Result<Self, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::MixedCurrencies);
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Self {
            currency: self.currency,
            minor,
        })
    }

    /// This amount times a count.
    pub fn checked_mul(self, count: i64) -> Result<Self, MoneyError> {
        let minor = self.minor.checked_mul(count).ok_or(MoneyError::Overflow)?;
        if minor < 0 {
            return Err(MoneyError::Negative);
        }
        Ok(Self {
            currency: self.currency,
            minor,
        })
    }
}

impl Currency {
    /// How many minor units a major unit has, as a power of ten (2 for EUR, 0 for JPY, 3 for KWD).
    pub fn exponent(&self) -> u32 {
        iso_currency::Currency::from_code(self.as_str())
            .and_then(|currency| currency.exponent())
            .map_or(2, u32::from)
    }
}

/// `EUR 39.98`: the code, then the amount in major units with the currency's decimals (`JPY 500`).
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exponent = self.currency.exponent();
        let scale = 10i64.pow(exponent);
        let (major, minor) = (self.minor / scale, self.minor % scale);
        if exponent == 0 {
            write!(f, "{} {major}", self.currency)
        } else {
            write!(
                f,
                "{} {major}.{minor:0width$}",
                self.currency,
                width = exponent as usize
            )
        }
    }
}

/// The checked amount of a message's `Money`: a currency in circulation and a non-negative amount.
impl TryFrom<&crate::common::v1::Money> for Money {
    type Error = MoneyError;

    fn try_from(message: &crate::common::v1::Money) -> Result<Self, MoneyError> {
        Self::parse(&message.currency_code, message.amount_minor)
    }
}

/// See the conversion from a reference.
impl TryFrom<crate::common::v1::Money> for Money {
    type Error = MoneyError;

    fn try_from(message: crate::common::v1::Money) -> Result<Self, MoneyError> {
        Self::try_from(&message)
    }
}

/// The amount as a message sends it (e.g. an order's `expected_total`).
impl From<Money> for crate::common::v1::Money {
    fn from(money: Money) -> Self {
        Self {
            currency_code: money.currency.as_str().to_owned(),
            amount_minor: money.minor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_show_in_major_units_and_convert_both_ways() {
        let price = Money::parse("EUR", 3998).expect("money");
        assert_eq!(price.to_string(), "EUR 39.98");
        assert_eq!(
            Money::parse("EUR", 5).expect("money").to_string(),
            "EUR 0.05"
        );
        assert_eq!(
            Money::parse("JPY", 500).expect("money").to_string(),
            "JPY 500"
        );
        assert_eq!(
            Money::parse("KWD", 1234).expect("money").to_string(),
            "KWD 1.234"
        );
        let message = crate::common::v1::Money::from(price);
        assert_eq!(message, crate::common::v1::Money::new("EUR", 3998));
        assert_eq!(Money::try_from(&message), Ok(price));
        assert_eq!(
            Money::try_from(crate::common::v1::Money::new("EUR", -1)),
            Err(MoneyError::Negative)
        );
        assert_eq!(
            Money::try_from(crate::common::v1::Money::new("euro", 1)),
            Err(MoneyError::BadCurrency)
        );
    }

    #[test]
    fn currencies_are_iso_4217_codes_in_circulation() {
        for good in ["EUR", "USD", "JPY", "GBP", "CHF"] {
            assert_eq!(
                Currency::parse(good).map(|c| c.to_string()),
                Ok(good.into())
            );
        }
        // Unknown, lower-case, superseded (HRK), gold (XAU), "no currency" (XXX), testing (XTS).
        for bad in [
            "",
            "eur",
            "EURO",
            "E1R",
            "€€€",
            "ZZZ",
            "HRK",
            "XAU",
            "XXX",
            "XTS",
        ] {
            assert_eq!(
                Currency::parse(bad),
                Err(MoneyError::BadCurrency),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_listed_codes_are_exactly_those_accepted() {
        let codes = Currency::codes();
        assert!(codes.len() > 100, "{}", codes.len());
        for code in ["EUR", "USD", "JPY"] {
            assert!(codes.iter().any(|c| c == code), "{code}");
        }
        for code in ["HRK", "XAU", "XXX", "XTS"] {
            assert!(!codes.iter().any(|c| c == code), "{code}");
        }
        assert!(
            codes.windows(2).all(|pair| pair[0] < pair[1]),
            "sorted, no repeats"
        );
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Money::parse("EUR", 150).expect("valid");
        assert_eq!(a.checked_mul(3).map(|m| m.minor()), Ok(450));
        assert_eq!(a.checked_add(a).map(|m| m.minor()), Ok(300));
        let usd = Money::parse("USD", 1).expect("valid");
        assert_eq!(a.checked_add(usd), Err(MoneyError::MixedCurrencies));
        let huge = Money::parse("EUR", i64::MAX).expect("valid");
        assert_eq!(huge.checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(huge.checked_add(a), Err(MoneyError::Overflow));
        assert_eq!(Money::parse("EUR", -1), Err(MoneyError::Negative));
        assert_eq!(Money::parse_positive("EUR", 0), Err(MoneyError::Zero));
    }

    #[test]
    fn the_metadata_form_reads_back_as_written() {
        let total = Money::parse("EUR", 3997).expect("valid");
        assert_eq!(total.to_metadata(), "EUR 3997");
        assert_eq!(Money::from_metadata("EUR 3997"), Some(total));
        for bad in ["EUR", "EUR x", "XYZ 1", "EUR -1", ""] {
            assert_eq!(Money::from_metadata(bad), None, "{bad:?}");
        }
    }
}
