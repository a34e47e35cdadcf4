"""Errors of the certs package.  Each explains itself to a person (see :mod:`host.errors`).

Verification failures carry a short machine-readable ``reason`` code (``bad_signature``,
``unknown_key``, ...) that ``station verify --json`` reports next to the human message.
"""

from __future__ import annotations

from host.errors import TabulaError


class CertError(TabulaError):
    """Base of every certs error."""

    #: Short, stable code naming the kind of failure (used in ``--json`` output and tests).
    reason: str = "error"


class InvalidCertificate(CertError):
    """A certificate could not be built because it would state something false or incomplete."""

    reason = "invalid_certificate"


class SettingsError(CertError):
    """The certificate settings file is unreadable or holds an invalid value."""

    reason = "settings_error"
    hint = "fix the settings file (see certs/README.md for every key)"


# --- reading and checking a signed certificate ------------------------------------------------


class VerificationError(CertError):
    """A signed file did not pass verification."""

    reason = "invalid"


class Unreadable(VerificationError):
    """The file could not be read at all."""

    reason = "unreadable"


class MalformedEnvelope(VerificationError):
    """Not a well-formed JWS (truncated file, bad JSON, bad base64url, wrong header)."""

    reason = "malformed"
    hint = "the file is truncated or is not a Tabula signed certificate"


class UnsupportedAlgorithm(MalformedEnvelope):
    reason = "unsupported_algorithm"
    hint = "Tabula certificates are signed with EdDSA (Ed25519) only"


class TooLarge(MalformedEnvelope):
    """The file is bigger than any record Tabula writes; it is refused before being read."""

    reason = "too_large"
    hint = "a Tabula certificate is a few kilobytes (JSON) or a few hundred kilobytes (PDF)"


class BadSignature(VerificationError):
    """The signature does not match the signed bytes: the file was changed after signing."""

    reason = "bad_signature"
    hint = "the certificate was modified after it was signed; do not trust its content"


class UnknownKey(VerificationError):
    """The signature is valid but the signing key is in no trust store."""

    reason = "unknown_key"
    hint = (
        "add the station's public key (station keys export) or its organisation's key to the trust directory"
    )


class UnendorsedKey(VerificationError):
    """The station key came with an endorsement that no trusted organisation key vouches for."""

    reason = "unendorsed_key"
    hint = "trust the organisation key that endorsed this station, or re-endorse the station key"


class KeyRoleError(VerificationError):
    """A key was used for what its role does not allow (an organisation key signing a certificate)."""

    reason = "key_role"
    hint = "organisation keys endorse station keys; station keys sign certificates"


class StationMismatch(VerificationError):
    """The certificate's signed station id is not the one its key is bound to in the trust store."""

    reason = "station_mismatch"
    hint = "a station key signs only as the station it was trusted or endorsed for"


class RevokedKey(VerificationError):
    """The signing key (or the organisation key that endorsed it) was revoked before this was signed."""

    reason = "revoked_key"
    hint = "the key was revoked by its organisation: do not trust what it signed after the revocation"


class SchemaError(VerificationError):
    """The signed payload is not a valid certificate of a known schema version."""

    reason = "schema_error"


class NotASuccess(VerificationError):
    """Valid, authentic signature, but the record is a failure report: the drive is NOT erased."""

    reason = "failure_report"
    hint = "the drive was not (provably) erased: erase it again and keep the new certificate"


class ChainError(VerificationError):
    """A station's certificate sequence is broken: a certificate was deleted, duplicated or reordered."""

    reason = "chain_error"
    hint = "collect every certificate the station issued; a missing one may hide a failed erasure"


class ChainGap(ChainError):
    reason = "chain_gap"


class ChainBreak(ChainError):
    reason = "chain_break"


class ChainDuplicate(ChainError):
    reason = "chain_duplicate"


class ChainReordered(ChainError):
    reason = "chain_reordered"


class ChainTruncated(ChainError):
    """A signed chain head names a newer certificate than the newest present: certificates were deleted."""

    reason = "chain_truncated"
    hint = (
        "the station published a newer certificate than any here: find the missing ones (the hub holds them)"
    )


class ChainFork(ChainError):
    """The certificate at a number a signed chain head names is not the one the station published."""

    reason = "chain_fork"
    hint = "this folder holds another branch of the station's chain than the one it published"


# --- the hub's transparency log ------------------------------------------------------------------


class LogError(VerificationError):
    """A transparency-log proof or tree head did not check out."""

    reason = "log_error"


class LogProofMissing(LogError):
    """``--log`` was asked for, but no inclusion proof goes with this certificate."""

    reason = "log_proof_missing"
    hint = (
        "run station sync (it fetches the proof of every certificate the hub holds), or pass the proof file"
    )


class ProofMalformed(LogError):
    """A proof, tree head or chain head file is not of the documented form."""

    reason = "proof_malformed"
    hint = "the file is truncated, edited, or not a Tabula log file"


class ProofMismatch(LogError):
    """The proof file is about another certificate than the one it was given for."""

    reason = "proof_mismatch"
    hint = "each certificate's proof is <id>.log.json next to it; this one belongs to another record"


class ProofInvalid(LogError):
    """The inclusion proof does not lead to the signed tree head's root."""

    reason = "proof_invalid"
    hint = "the certificate is not in the log as this tree head describes it: do not rely on this proof"


class SthBadSignature(LogError):
    """The signed tree head's signature does not match its content."""

    reason = "sth_bad_signature"
    hint = "the tree head was modified after the hub signed it"


class LogKeyUnknown(LogError):
    """The tree head is signed by a key that is not the log key given."""

    reason = "log_key_unknown"
    hint = "pass the hub's log key (GET /api/v1/log/key.pem) with --log"


class InconsistentTree(LogError):
    """Two signed tree heads cannot both be views of one append-only log."""

    reason = "inconsistent_tree"
    hint = "the hub rewrote or forked its log between these tree heads: keep both files as evidence"


class DuplicateId(VerificationError):
    """Two different signed records carry the same certificate id."""

    reason = "duplicate_id"
    hint = "a certificate id names one record; one of these files is a copy made to confuse"


class PageMismatch(VerificationError):
    """The PDF's visible page, QR code or metadata says something the signed record does not."""

    reason = "page_mismatch"
    hint = "the PDF was edited after signing: trust only the signed record (station verify FILE.json)"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class InternalError(VerificationError):
    """The verifier met a case it does not handle: a defect of Tabula, reported instead of crashing."""

    reason = "internal_error"
    hint = "the file is refused; please report it with the file attached"


# --- keys, trust and the sequence state ---------------------------------------------------------


class KeyStoreError(CertError):
    """A key file is missing, unreadable, of the wrong type or has unsafe permissions."""

    reason = "key_error"


class KeyMissing(KeyStoreError):
    hint = "create the station key first: station keys init"


class KeyExists(KeyStoreError):
    hint = "a key already exists; Tabula never overwrites a signing key"


class TrustStoreError(CertError):
    """The trust directory holds a file that is not a public key or a valid endorsement."""

    reason = "trust_error"


class SequenceError(CertError):
    """The station's certificate sequence state is unreadable or inconsistent with its key."""

    reason = "sequence_error"
    hint = "restore the sequence state from backup; never reset it, or the chain will show a gap"


class PdfError(CertError):
    """A PDF certificate could not be written or carries no signed record."""

    reason = "pdf_error"


class PdfStructure(PdfError):
    """The PDF does not hold exactly one embedded record that every PDF tool finds the same way."""

    reason = "pdf_structure"
    hint = "a Tabula PDF embeds one file, tabula-certificate.json; this one was built or edited otherwise"


class QrError(PdfError):
    """The drawn module matrix is not a valid, error-free QR code this decoder reads."""

    reason = "qr_error"


# --- lot reports and their impact figures ----------------------------------------------------------


class ImpactTableError(CertError):
    """An impact factor table is unreadable or holds a figure without its source, year or method."""

    reason = "impact_table_error"
    hint = "fix the table (certs/README.md, 'Impact factors', gives its format) or use the default one"


class InvalidLotReport(InvalidCertificate):
    """A lot report could not be built because it would state something inconsistent or false."""

    reason = "invalid_lot_report"


class LotRecordMissing(VerificationError):
    """A certificate or destruction record the lot report lists is not in the folder (nor in the log)."""

    reason = "record_missing"
    hint = "give the folder that holds every record of the lot (--certs DIR), or the hub's log proofs"


class LotRecordMismatch(VerificationError):
    """A record the lot report lists does not say what the report says (level, date, result, drive)."""

    reason = "record_mismatch"
    hint = "the report and the record disagree: trust the signed record, and ask the organisation why"


class LotRecordInvalid(VerificationError):
    """A record the lot report lists is present but does not verify (signature, trust, schema...)."""

    reason = "record_invalid"
    hint = "verify the record itself (station verify FILE) to see why it fails"
