//! [`Lenient`]: a value a reader may not know yet (a newer server's status or code), kept instead of refused.

use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A known value, or the text of one this version does not know.
///
/// The official SDK crashed on statuses it did not know (WIRE.md B12, B18); a reader decides what an unknown
/// value means (a check's unknown decision is a denial, an approval's unknown status is not yet decided).
///
/// ```
/// use haltstate_types::{ApprovalStatus, Lenient};
///
/// let known: Lenient<ApprovalStatus> = serde_json::from_str(r#""approved""#)?;
/// assert_eq!(known, Lenient::Known(ApprovalStatus::Approved));
/// let newer: Lenient<ApprovalStatus> = serde_json::from_str(r#""escalated""#)?;
/// assert_eq!(newer, Lenient::Unknown("escalated".into()));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Lenient<T> {
    /// A value this version knows.
    Known(T),
    /// The text of a value it does not.
    Unknown(String),
}

impl<T> Lenient<T> {
    /// The value, when known.
    pub fn known(&self) -> Option<&T> {
        match self {
            Lenient::Known(value) => Some(value),
            Lenient::Unknown(_) => None,
        }
    }
}

/// `status == ApprovalStatus::Approved` reads as it should: equal when known and the same.
impl<T: PartialEq> PartialEq<T> for Lenient<T> {
    fn eq(&self, other: &T) -> bool {
        self.known() == Some(other)
    }
}

impl<T> From<T> for Lenient<T> {
    fn from(value: T) -> Self {
        Lenient::Known(value)
    }
}

impl<T: Serialize> Serialize for Lenient<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Lenient::Known(value) => value.serialize(s),
            Lenient::Unknown(text) => s.serialize_str(text),
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let parsed: Result<T, serde::de::value::Error> =
            T::deserialize(text.as_str().into_deserializer());
        Ok(parsed.map_or(Lenient::Unknown(text), Lenient::Known))
    }
}
