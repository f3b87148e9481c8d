use std::fmt;
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub type_name: &'static str,
    pub message: String,
}
impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot decode {} value: {}", self.type_name, self.message)
    }
}
pub(crate) fn bad<T>(type_name: &'static str, message: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError { type_name, message: message.into() })
}
