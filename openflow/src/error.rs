//! OpenFlow errors: every decoding failure is one of these, carrying the
//! (type, code) pair an OpenFlow 1.3 switch answers with and a reason for
//! the log.

/// An OpenFlow error (type, code), OpenFlow 1.3 §A.4.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ErrCode {
    pub type_: u16,
    pub code: u16,
}

macro_rules! codes {
    ($($name:ident = ($t:expr, $c:expr), $text:expr;)*) => {
        impl ErrCode {
            $(pub const $name: ErrCode = ErrCode { type_: $t, code: $c };)*

            /// OVS's name for the error (`OFPBAC_BAD_TYPE`).
            pub fn name(self) -> String {
                match (self.type_, self.code) {
                    $(($t, $c) => $text.to_string(),)*
                    (t, c) => format!("error type {t} code {c}"),
                }
            }
        }
    };
}

codes! {
    HELLO_INCOMPATIBLE = (0, 0), "OFPHFC_INCOMPATIBLE";
    HELLO_EPERM = (0, 1), "OFPHFC_EPERM";
    BAD_VERSION = (1, 0), "OFPBRC_BAD_VERSION";
    BAD_TYPE = (1, 1), "OFPBRC_BAD_TYPE";
    BAD_MULTIPART = (1, 2), "OFPBRC_BAD_MULTIPART";
    BAD_EXPERIMENTER = (1, 3), "OFPBRC_BAD_EXPERIMENTER";
    BAD_EXP_TYPE = (1, 4), "OFPBRC_BAD_EXP_TYPE";
    REQUEST_EPERM = (1, 5), "OFPBRC_EPERM";
    BAD_LEN = (1, 6), "OFPBRC_BAD_LEN";
    BUFFER_UNKNOWN = (1, 8), "OFPBRC_BUFFER_UNKNOWN";
    BAD_TABLE_ID = (1, 9), "OFPBRC_BAD_TABLE_ID";
    IS_SLAVE = (1, 10), "OFPBRC_IS_SLAVE";
    BAD_PORT = (1, 11), "OFPBRC_BAD_PORT";
    BAD_PACKET = (1, 12), "OFPBRC_BAD_PACKET";
    BAC_BAD_TYPE = (2, 0), "OFPBAC_BAD_TYPE";
    BAC_BAD_LEN = (2, 1), "OFPBAC_BAD_LEN";
    BAC_BAD_EXPERIMENTER = (2, 2), "OFPBAC_BAD_EXPERIMENTER";
    BAC_BAD_EXP_TYPE = (2, 3), "OFPBAC_BAD_EXP_TYPE";
    BAC_BAD_OUT_PORT = (2, 4), "OFPBAC_BAD_OUT_PORT";
    BAC_BAD_ARGUMENT = (2, 5), "OFPBAC_BAD_ARGUMENT";
    BAC_TOO_MANY = (2, 7), "OFPBAC_TOO_MANY";
    BAC_BAD_OUT_GROUP = (2, 9), "OFPBAC_BAD_OUT_GROUP";
    BAC_MATCH_INCONSISTENT = (2, 10), "OFPBAC_MATCH_INCONSISTENT";
    BAC_UNSUPPORTED_ORDER = (2, 11), "OFPBAC_UNSUPPORTED_ORDER";
    BAC_BAD_SET_TYPE = (2, 13), "OFPBAC_BAD_SET_TYPE";
    BAC_BAD_SET_LEN = (2, 14), "OFPBAC_BAD_SET_LEN";
    BAC_BAD_SET_ARGUMENT = (2, 15), "OFPBAC_BAD_SET_ARGUMENT";
    BIC_UNKNOWN_INST = (3, 0), "OFPBIC_UNKNOWN_INST";
    BIC_UNSUP_INST = (3, 1), "OFPBIC_UNSUP_INST";
    BIC_BAD_TABLE_ID = (3, 2), "OFPBIC_BAD_TABLE_ID";
    BIC_BAD_EXPERIMENTER = (3, 5), "OFPBIC_BAD_EXPERIMENTER";
    BIC_BAD_LEN = (3, 7), "OFPBIC_BAD_LEN";
    BIC_DUP_INST = (3, 0x0100), "OFPBIC_DUP_INST";
    BMC_BAD_TYPE = (4, 0), "OFPBMC_BAD_TYPE";
    BMC_BAD_LEN = (4, 1), "OFPBMC_BAD_LEN";
    BMC_BAD_FIELD = (4, 6), "OFPBMC_BAD_FIELD";
    BMC_BAD_VALUE = (4, 7), "OFPBMC_BAD_VALUE";
    BMC_BAD_MASK = (4, 8), "OFPBMC_BAD_MASK";
    BMC_BAD_PREREQ = (4, 9), "OFPBMC_BAD_PREREQ";
    BMC_DUP_FIELD = (4, 10), "OFPBMC_DUP_FIELD";
    FMFC_UNKNOWN = (5, 0), "OFPFMFC_UNKNOWN";
    FMFC_TABLE_FULL = (5, 1), "OFPFMFC_TABLE_FULL";
    FMFC_BAD_TABLE_ID = (5, 2), "OFPFMFC_BAD_TABLE_ID";
    FMFC_OVERLAP = (5, 3), "OFPFMFC_OVERLAP";
    FMFC_EPERM = (5, 4), "OFPFMFC_EPERM";
    FMFC_BAD_COMMAND = (5, 6), "OFPFMFC_BAD_COMMAND";
    FMFC_BAD_FLAGS = (5, 7), "OFPFMFC_BAD_FLAGS";
    GMFC_GROUP_EXISTS = (6, 0), "OFPGMFC_GROUP_EXISTS";
    GMFC_INVALID_GROUP = (6, 1), "OFPGMFC_INVALID_GROUP";
    GMFC_UNKNOWN_GROUP = (6, 8), "OFPGMFC_UNKNOWN_GROUP";
    GMFC_BAD_TYPE = (6, 10), "OFPGMFC_BAD_TYPE";
    GMFC_BAD_COMMAND = (6, 11), "OFPGMFC_BAD_COMMAND";
    GMFC_BAD_BUCKET = (6, 12), "OFPGMFC_BAD_BUCKET";
    PMFC_BAD_PORT = (7, 0), "OFPPMFC_BAD_PORT";
    PMFC_BAD_HW_ADDR = (7, 1), "OFPPMFC_BAD_HW_ADDR";
    PMFC_BAD_CONFIG = (7, 2), "OFPPMFC_BAD_CONFIG";
    SCFC_BAD_FLAGS = (10, 0), "OFPSCFC_BAD_FLAGS";
    RRFC_STALE = (11, 0), "OFPRRFC_STALE";
    RRFC_UNSUP = (11, 1), "OFPRRFC_UNSUP";
    RRFC_BAD_ROLE = (11, 2), "OFPRRFC_BAD_ROLE";
    MMFC_UNKNOWN = (12, 0), "OFPMMFC_UNKNOWN";
    TFFC_EPERM = (13, 5), "OFPTFFC_EPERM";
}

impl ErrCode {
    pub fn bad_action(code: u16) -> ErrCode {
        ErrCode { type_: 2, code }
    }
}

/// A decoding (or validation) failure: the error to send and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} ({reason})", code.name())]
pub struct OfError {
    pub code: ErrCode,
    pub reason: String,
}

impl OfError {
    pub fn new(code: ErrCode, reason: impl Into<String>) -> Self {
        OfError {
            code,
            reason: reason.into(),
        }
    }
}

/// Shorthand for `Err(OfError::new(..))`.
pub(crate) fn fail<T>(code: ErrCode, reason: impl Into<String>) -> Result<T, OfError> {
    Err(OfError::new(code, reason))
}
