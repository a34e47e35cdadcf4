"""The English prose of signed records and journals, in the technician's language.

Reasons, notes and details are written in English by the layers below the station (the journal,
the worker, the record, the certificate builder, firmware steps, diagnostics, protection) and are
*kept* in English in what is signed: a record says what happened in one language, for every
auditor.  People read them translated: the PDF in its language (:mod:`certs.page`) and the station's
screens and commands (``station.i18n.tr``) both go through :func:`translate`.

A phrase is an English template with ``{named}`` fields and its translation.  A text is translated
when a template matches it whole (the most specific template first, counted in literal characters);
each field is translated in turn (a reason quotes another reason).  A text no template matches is
split on ``"; "`` (lists of reasons) and then ``", "`` and its parts are translated one by one; what
is still unknown stays as written (a file name, a model, a tool's own output).

These tables are part of the PDF format (:mod:`certs.page` edition 2): ``station verify`` draws a
certificate's page again to compare it with the PDF, so a translation that changes after
certificates were issued would make their pages differ.  Add phrases freely for *new* English text;
to reword a translation, start a new page edition (see :mod:`certs.page`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

#: (English template, French).  Fields are ``{name}``; every field of the English appears in the French.
FR: tuple[tuple[str, str], ...] = (
    # -- the worker and the journal: why a job failed or stopped
    ("the drive stopped accepting writes: {detail}", "le disque n'accepte plus d'écriture : {detail}"),
    ("the drive disappeared: {detail}", "le disque a disparu : {detail}"),
    (
        "the job was stopped on request (SIGTERM/SIGINT) before the end",
        "l'effacement a été arrêté à la demande, avant la fin",
    ),
    ("the job was cancelled before the end", "l'effacement a été annulé avant la fin"),
    (
        "the worker stopped before the end (killed, crashed or power lost)",
        "l'effacement s'est arrêté avant la fin (processus tué, panne ou coupure de courant)",
    ),
    (
        "the journal ends with a torn line (the worker died while writing it)",
        "le journal se termine par une ligne incomplète (le processus s'est arrêté en l'écrivant)",
    ),
    ("internal error: {detail}", "erreur interne : {detail}"),
    ("pass {i} stopped before the end", "la passe {i} s'est arrêtée avant la fin"),
    (
        "pass {i} aborted at the first unwritable range (offset {offset})",
        "passe {i} abandonnée à la première zone non inscriptible (octet {offset})",
    ),
    (
        "{device} is now {identity} ({size} bytes), the plan was for {planned} ({planned_size} bytes)",
        "{device} est maintenant {identity} ({size} octets), le plan visait {planned} ({planned_size} octets)",
    ),
    ("{device} is protected: {why}", "{device} est protégé : {why}"),
    (
        "{device} has {size} bytes, the plan says {planned}",
        "{device} a {size} octets, le plan en prévoit {planned}",
    ),
    ("step {i} ({label}) failed: {note}", "l'étape {i} ({label}) a échoué : {note}"),
    # -- the engine: a drive that stops answering
    (
        "{device}: every sector of {n} consecutive blocks failed to write (last at offset {offset}: {error})",
        "{device} : aucun secteur de {n} blocs consécutifs n'a pu être écrit (le dernier à l'octet {offset} : {error})",
    ),
    ("{device}: the drive no longer answers ({error})", "{device} : le disque ne répond plus ({error})"),
    ("{device}: the drive disappeared ({error})", "{device} : le disque a disparu ({error})"),
    (
        "{device}: the drive disappeared (its size changed from {before} to {after})",
        "{device} : le disque a disparu (sa taille est passée de {before} à {after})",
    ),
    (
        "{device}: the drive stopped answering: reads of its first and last sector fail ({error})",
        "{device} : le disque ne répond plus : la lecture de son premier et de son dernier secteur échoue ({error})",
    ),
    (
        "{device}: flushing written data failed ({error})",
        "{device} : l'écriture sur le support a échoué ({error})",
    ),
    ("Input/output error", "erreur d'entrée-sortie"),
    ("[Errno 5] Input/output error", "erreur d'entrée-sortie"),
    ("No space left on device", "plus de place sur le support"),
    ("No such device", "périphérique absent"),
    ("No such device or address", "périphérique absent"),
    ("No such file or directory", "fichier ou périphérique absent"),
    # -- the record: what stands between the facts and a success
    ("step {i} ({label}) did not run", "l'étape {i} ({label}) n'a pas été exécutée"),
    (
        "step {i} ({label}) has no evidence of success: {note}",
        "l'étape {i} ({label}) n'a pas prouvé sa réussite : {note}",
    ),
    (
        "step {i} ({label}) reached {achieved}, not {planned}",
        "l'étape {i} ({label}) a atteint {achieved}, pas {planned}",
    ),
    ("{n} of {total} passes recorded", "{n} passes enregistrées sur {total}"),
    ("pass {i} incomplete ({written}/{total} bytes)", "passe {i} incomplète ({written}/{total} octets)"),
    ("pass {i}: {n} unwritable range(s)", "passe {i} : {n} zone(s) non inscriptible(s)"),
    ("pass {i} covered {n} of {total} bytes", "la passe {i} a couvert {n} octets sur {total}"),
    (
        "verification was asked; an unverified outcome is not allowed",
        "une vérification était demandée : un résultat non vérifié n'est pas admis",
    ),
    (
        "no verification was asked; the outcome cannot be 'verified'",
        "aucune vérification n'était demandée : le résultat ne peut pas être « vérifié »",
    ),
    ("pass {i} was not verified", "la passe {i} n'a pas été vérifiée"),
    (
        "verification of pass {i} failed ({n} sector(s) differ)",
        "la vérification de la passe {i} a échoué ({n} secteur(s) différent(s))",
    ),
    (
        "pass {i} verified in {mode} mode, {asked} was asked",
        "passe {i} vérifiée en mode {mode}, {asked} était demandé",
    ),
    ("not sanitized: {reasons}", "non effacé : {reasons}"),
    ("the overwrite was not verified", "la réécriture n'a pas été vérifiée"),
    # -- the certificate builder
    (
        "the overwrite was not verified (verify policy 'none'); NIST SP 800-88 requires verification",
        "la réécriture n'a pas été vérifiée (aucune vérification demandée) ; NIST SP 800-88 exige une vérification",
    ),
    ("the job ended '{outcome}'", "l'effacement s'est terminé ainsi : {outcome}"),
    ("not erased: {reasons}", "non effacé : {reasons}"),
    (
        "the drive's status and a sampled read-back after each firmware step",
        "l'état rapporté par le disque et une relecture par échantillons après chaque commande du micrologiciel",
    ),
    ("full read-back of every pass", "relecture complète de chaque passe"),
    ("full read-back of the last pass", "relecture complète de la dernière passe"),
    ("sampled read-back of every pass{coverage}", "relecture par échantillons de chaque passe{coverage}"),
    (
        "sampled read-back of the last pass{coverage}",
        "relecture par échantillons de la dernière passe{coverage}",
    ),
    (" ({pct} % of the bytes)", " ({pct} % des octets)"),
    ("none (not verified)", "aucune (non vérifié)"),
    ("(not run)", "(non exécutée)"),
    ("not run", "non exécutée"),
    ("step never ran", "étape jamais exécutée"),
    ("pass never started", "passe jamais commencée"),
    (
        "preparation step: reaches no level by itself",
        "étape de préparation : n'atteint aucun niveau à elle seule",
    ),
    (
        "preparation step: reaches no level by itself; FAILED: {note}",
        "étape de préparation : n'atteint aucun niveau à elle seule ; ÉCHEC : {note}",
    ),
    ("no evidence of success: {note}", "aucune preuve de réussite : {note}"),
    ("{label} reaches {level} only on this media", "{label} n'atteint que {level} sur ce support"),
    ("{status}; data read back: {detail}", "{status} ; données relues : {detail}"),
    ("pass incomplete ({written}/{total} bytes)", "passe incomplète ({written}/{total} octets)"),
    ("{n} unwritable range(s)", "{n} zone(s) non inscriptible(s)"),
    (
        "the job was not certified (see the reasons above)",
        "l'effacement n'est pas certifié (voir les motifs plus haut)",
    ),
    (
        "hidden areas (HPA/DCO) not checked: only the host-accessible capacity was sanitized",
        "zones cachées (HPA/DCO) non vérifiées : seule la capacité accessible a été effacée",
    ),
    (
        "hidden areas (HPA/DCO) not checked: only the host-accessible capacity was overwritten",
        "zones cachées (HPA/DCO) non vérifiées : seule la capacité accessible a été réécrite",
    ),
    (
        "no hidden area (HPA/DCO) found: the whole native capacity was sanitized",
        "aucune zone cachée (HPA/DCO) : toute la capacité native a été effacée",
    ),
    ("hdparm -N: no Host Protected Area", "hdparm -N : pas de zone protégée (HPA)"),
    ("{n} bytes hidden (HPA/AMA/DCO)", "{n} octets cachés (HPA/AMA/DCO)"),
    ("native size restored and re-probed", "taille native rétablie et vérifiée"),
    ("the hidden area could not be removed", "la zone cachée n'a pas pu être retirée"),
    (
        "a hidden area of {n} bytes was removed before sanitizing",
        "une zone cachée de {n} octets a été retirée avant l'effacement",
    ),
    (
        "a hidden area of {n} bytes remains: not sanitized",
        "une zone cachée de {n} octets subsiste : non effacée",
    ),
    ("{n} pass(es): {patterns}", "{n} passe(s) : {patterns}"),
    ("policy {policy}", "politique {policy}"),
    ("firmware steps: {steps}", "commandes du micrologiciel : {steps}"),
    ("then {details}", "puis {details}"),
    ("{n} rounds", "{n} tours"),
    ("final blanking pass", "passe finale de zéros"),
    # -- overwrite patterns (erase.methods labels and Pattern.describe)
    ("{label} (AES-128-CTR, seed {seed})", "{label} (AES-128-CTR, graine {seed})"),
    ("{label} (0x{hex})", "{label} (0x{hex})"),
    ("{method} pass {i}/{n}: random", "{method} passe {i}/{n} : aléatoire"),
    ("{method} pass {i}/{n}: 0x{hex}", "{method} passe {i}/{n} : 0x{hex}"),
    ("{method} pass {i}/{n}: final blank 0x00", "{method} passe {i}/{n} : zéros finaux 0x00"),
    ("overwrite: {pattern}", "réécriture : {pattern}"),
    ("random", "aléatoire"),
    ("zeros", "zéros"),
    ("ones", "uns"),
    ("pattern", "motif"),
    # -- the purge planner and its steps (labels, notes, level notes)
    (
        "Purge is not possible on this drive ({why}); overwrite ({media} media) reaches Clear only",
        "Purge est impossible sur ce disque ({why}) ; la réécriture (support {media}) n'atteint que Clear",
    ),
    ("flash", "flash"),
    ("magnetic", "magnétique"),
    ("TCG Opal PSID revert (crypto erase)", "retour usine TCG Opal par PSID (effacement cryptographique)"),
    ("ATA SANITIZE crypto scramble", "ATA SANITIZE brouillage cryptographique"),
    ("ATA SANITIZE block erase", "ATA SANITIZE effacement des blocs"),
    ("ATA SANITIZE overwrite (zeros)", "ATA SANITIZE réécriture (zéros)"),
    ("ATA SECURITY ERASE UNIT (enhanced)", "ATA SECURITY ERASE UNIT (renforcé)"),
    ("NVMe Sanitize crypto erase", "NVMe Sanitize effacement cryptographique"),
    ("NVMe Sanitize block erase", "NVMe Sanitize effacement des blocs"),
    ("NVMe Sanitize overwrite (zeros)", "NVMe Sanitize réécriture (zéros)"),
    (
        "NVMe Format, Secure Erase Settings 2 (crypto erase)",
        "NVMe Format, SES=2 (effacement cryptographique)",
    ),
    (
        "NVMe Format, Secure Erase Settings 1 (user data erase)",
        "NVMe Format, SES=1 (effacement des données)",
    ),
    ("SCSI SANITIZE cryptographic erase", "SCSI SANITIZE effacement cryptographique"),
    ("SCSI SANITIZE block erase", "SCSI SANITIZE effacement des blocs"),
    ("SCSI SANITIZE overwrite (zeros)", "SCSI SANITIZE réécriture (zéros)"),
    (
        "remove the Host Protected Area / restore the Accessible Max Address (native size)",
        "retirer la zone cachée (HPA/AMA) : retour à la taille native",
    ),
    (
        "restore the Device Configuration Overlay (DCO) factory size",
        "retirer la zone cachée (DCO) : retour à la taille d'usine",
    ),
    (
        "suspend to RAM and resume to clear the BIOS security freeze (operator consent)",
        "mise en veille puis réveil pour lever le gel de sécurité du BIOS (accord du technicien)",
    ),
    (
        "clear the ATA password an interrupted erase left (Tabula's temporary password)",
        "retirer le mot de passe ATA laissé par un effacement interrompu (mot de passe temporaire de Tabula)",
    ),
    ("the command did not complete", "la commande ne s'est pas terminée"),
    ("the drive's status does not confirm the step", "l'état du disque ne confirme pas l'étape"),
    ("no data evidence", "aucune preuve sur les données"),
    ("data check failed: {detail}", "le contrôle des données a échoué : {detail}"),
    ("command failed: {detail}", "la commande a échoué : {detail}"),
    ("no firmware sanitize command", "aucune commande d'effacement du micrologiciel"),
    (
        "no firmware sanitize command for loop devices",
        "aucune commande d'effacement du micrologiciel pour un périphérique de boucle",
    ),
    ("not needed: an earlier step purges", "inutile : une étape précédente atteint Purge"),
    ("reaches only Clear on this media", "n'atteint que Clear sur ce support"),
    ("needs the PSID printed on the drive label", "demande le PSID imprimé sur l'étiquette du disque"),
    ("not supported by the drive", "non prise en charge par le disque"),
    # -- drive health (diagnostics) as embedded in certificates
    ("SMART health failed", "santé SMART en échec"),
    ("SMART health failed ({why})", "santé SMART en échec ({why})"),
    ("SMART health unknown", "santé SMART inconnue"),
    ("SMART health unknown ({why})", "santé SMART inconnue ({why})"),
    ("SMART self-test failed", "autotest SMART en échec"),
    ("read errors during the sequential read test", "erreurs de lecture pendant le test de lecture"),
    ("reuse: {reason}", "réemploi : {reason}"),
    ("unknown: {reason}", "inconnu : {reason}"),
    ("repair: {reason}", "réparation : {reason}"),
    ("recycle: {reason}", "recyclage : {reason}"),
    ("{fact} = {value} > {limit}: {reason}", "{fact} = {value} > {limit} : {reason}"),
    ("{fact} = {value} < {limit}: {reason}", "{fact} = {value} < {limit} : {reason}"),
    ("above the workshop threshold", "au-delà du seuil de l'atelier"),
    # -- values of certificate fields
    ("unclassified", "non classifié"),
    ("Clear", "Clear"),
    ("Purge", "Purge"),
    ("overwrite", "réécriture"),
    ("firmware", "micrologiciel"),
    ("firmware+overwrite", "micrologiciel + réécriture"),
    ("full", "complète"),
    ("sample", "par échantillons"),
    ("write", "écriture"),
    ("read", "lecture"),
    ("verify", "vérification"),
    ("verified", "vérifié"),
    ("unverified", "non vérifié"),
    ("failed", "échoué"),
    ("interrupted", "interrompu"),
    ("hdd", "disque dur"),
    ("ssd", "SSD"),
    ("nvme", "NVMe"),
    ("usb", "USB"),
    ("mmc", "carte SD/MMC"),
    ("virtual", "virtuel"),
    ("unknown", "inconnu"),
    ("loop", "fichier (périphérique de boucle)"),
    ("none", "aucune"),
    ("present", "présente"),
    ("removed", "retirée"),
    ("unsupported", "non prise en charge"),
    ("passed", "réussie"),
    ("incomplete", "incomplète"),
    ("not_performed", "non effectuée"),
    ("not_checked", "non vérifiée"),
)

TABLES: dict[str, tuple[tuple[str, str], ...]] = {"fr": FR}

_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class _Phrase:
    pattern: re.Pattern[str]
    fields: tuple[str, ...]
    target: str
    literal: int  # characters outside the fields: the more, the more specific


def _compile(english: str, target: str) -> _Phrase:
    parts = _FIELD.split(english)  # literal, field, literal, field, ..., literal
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
    fields = tuple(parts[1::2])
    if sorted(fields) != sorted(_FIELD.findall(target)):
        raise ValueError(f"the translation of {english!r} does not keep its fields")
    literal = sum(len(p) for p in parts[0::2])
    return _Phrase(re.compile(regex, re.DOTALL), fields, target, literal)


class Phrasebook:
    """The phrases of one language, ready to match."""

    def __init__(self, pairs: tuple[tuple[str, str], ...]) -> None:
        self.exact = {en: target for en, target in pairs if not _FIELD.search(en)}
        templates = [_compile(en, target) for en, target in pairs if _FIELD.search(en)]
        self.templates = sorted(templates, key=lambda p: -p.literal)

    def translate(self, text: str, depth: int = 0) -> str:
        if not text or depth > 8:
            return text
        if text in self.exact:
            return self.exact[text]
        for phrase in self.templates:
            m = phrase.pattern.fullmatch(text)
            if m is not None:
                return phrase.target.format(
                    **{k: self.translate(v, depth + 1) for k, v in m.groupdict().items()}
                )
        for sep in ("; ", ", "):
            if sep in text:
                return sep.join(self.translate(part, depth + 1) for part in text.split(sep))
        return text

    def knows(self, text: str) -> bool:
        """Whether a phrase matches ``text`` whole (for tests: what stayed in English)."""
        return text in self.exact or any(p.pattern.fullmatch(text) for p in self.templates)


@cache
def phrasebook(lang: str) -> Phrasebook | None:
    pairs = TABLES.get(lang)
    return Phrasebook(pairs) if pairs is not None else None


def translate(text: str, lang: str) -> str:
    """``text`` (English, as a record or journal says it) in ``lang``; unchanged in English."""
    book = phrasebook(lang)
    return book.translate(text) if book is not None else text
