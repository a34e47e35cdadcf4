"""The words of the hub's lot pages, in French and English, and which language a request wants.

The language is ``?lang=fr`` or ``?lang=en`` when given, else the first of French or English in the
request's ``Accept-Language`` (by quality), else English.
"""

from __future__ import annotations

from collections.abc import Mapping

LANGS = ("en", "fr")

TEXT: Mapping[str, Mapping[str, str]] = {
    "lot": {"en": "Donation lot", "fr": "Lot de don"},
    "donor_title": {"en": "What became of your donation", "fr": "Ce que sont devenus vos appareils"},
    "donor_intro": {
        "en": "{org} received these devices from you on {date}. This page shows their progress: data "
        "erased and verified (or the drive physically destroyed), then reuse or recycling.",
        "fr": "{org} a reçu ces appareils de votre part le {date}. Cette page montre leur parcours : "
        "données effacées et vérifiées (ou disque détruit physiquement), puis réemploi ou recyclage.",
    },
    "reference": {"en": "Reference", "fr": "Référence"},
    "donor": {"en": "Donor", "fr": "Donateur"},
    "donor_kind": {"en": "Donor kind", "fr": "Type de donateur"},
    "received_on": {"en": "Received on", "fr": "Reçu le"},
    "closed": {"en": "Closed", "fr": "Clos le"},
    "open": {"en": "open", "fr": "en cours"},
    "contact": {"en": "Contact (personal data)", "fr": "Contact (donnée personnelle)"},
    "contact_erased": {"en": "erased (retention rule)", "fr": "effacé (durée de conservation)"},
    "progress": {"en": "Progress", "fr": "Avancement"},
    "devices": {"en": "Devices received", "fr": "Appareils reçus"},
    "diagnosed": {"en": "Diagnosed", "fr": "Diagnostiqués"},
    "cleared": {
        "en": "Data cleared (proof for every drive)",
        "fr": "Données effacées (preuve pour chaque disque)",
    },
    "repaired": {"en": "Repaired", "fr": "Réparés"},
    "outcome_reused": {"en": "Reused", "fr": "Réemployés"},
    "outcome_sold": {"en": "Sold at a solidarity price", "fr": "Vendus à prix solidaire"},
    "outcome_recycled": {"en": "Recycled (WEEE channel)", "fr": "Recyclés (filière DEEE)"},
    "outcome_destroyed": {"en": "Destroyed", "fr": "Détruits"},
    "outcome_none": {"en": "no outcome yet", "fr": "pas encore de destination"},
    "missing": {"en": "Devices missing proof", "fr": "Appareils sans preuve d'effacement"},
    "missing_none": {
        "en": "None: every device's drives have a proof.",
        "fr": "Aucun : chaque disque a sa preuve.",
    },
    "asset": {"en": "Asset number", "fr": "N° d'inventaire"},
    "kind": {"en": "Kind", "fr": "Type"},
    "device": {"en": "Make and model", "fr": "Marque et modèle"},
    "verdict": {"en": "Diagnosis", "fr": "Diagnostic"},
    "data": {"en": "Data", "fr": "Données"},
    "outcome": {"en": "Outcome", "fr": "Destination"},
    "yes_cleared": {"en": "cleared", "fr": "effacées"},
    "not_cleared": {"en": "not yet proven", "fr": "pas encore prouvé"},
    "why": {"en": "Why", "fr": "Pourquoi"},
    "impact": {"en": "Impact of reuse", "fr": "Impact du réemploi"},
    "impact_text": {
        "en": "{n} device(s) reused: {waste} kg of electronic waste and {co2} kg CO2e avoided ({table}).",
        "fr": "{n} appareil(s) réemployé(s) : {waste} kg de déchets électroniques et {co2} kg CO2e évités ({table}).",
    },
    "not_found": {"en": "Not found", "fr": "Introuvable"},
    "donor_gone": {
        "en": "This link is unknown or was withdrawn. Ask the organisation for a new one.",
        "fr": "Ce lien est inconnu ou a été retiré. Demandez-en un nouveau à la structure.",
    },
    "staff_only": {
        "en": "This page is for the organisation's staff: sign in with a staff token as the password.",
        "fr": "Page réservée à l'équipe de la structure : connectez-vous avec un jeton d'équipe comme mot de passe.",
    },
    "other_language": {"en": "Version française", "fr": "English version"},
    "company": {"en": "company", "fr": "entreprise"},
    "public_body": {"en": "public body", "fr": "organisme public"},
    "household": {"en": "household", "fr": "particulier"},
    "reuse": {"en": "reuse", "fr": "réemploi"},
    "repair": {"en": "repair", "fr": "réparation"},
    "recycle": {"en": "recycle", "fr": "recyclage"},
    "stats": {"en": "Network statistics", "fr": "Statistiques du réseau"},
    "stats_devices": {"en": "Devices received per month", "fr": "Appareils reçus par mois"},
    "stats_levels": {"en": "NIST SP 800-88 levels reached", "fr": "Niveaux NIST SP 800-88 atteints"},
    "stats_failures": {
        "en": "Erasure failure rate by drive model",
        "fr": "Taux d'échec d'effacement par modèle de disque",
    },
    "stats_median": {
        "en": "Median days from intake to outcome",
        "fr": "Délai médian (jours) de la réception à la destination",
    },
    "stats_impact": {
        "en": "{n} device(s) reused: {waste} kg of electronic waste and {co2} kg CO2e avoided.",
        "fr": "{n} appareil(s) réemployé(s) : {waste} kg de déchets électroniques et {co2} kg CO2e évités.",
    },
}


def t(key: str, lang: str, **values: object) -> str:
    words = TEXT[key][lang if lang in LANGS else "en"]
    return words.format(**values) if values else words


def _accepted(header: str) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    for i, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if q <= 0:
            continue  # q=0: "not acceptable"
        out.append((-q + i * 1e-6, tag.strip().lower()[:2]))
    return sorted(out)


def language(query_lang: str | None, accept_language: str | None) -> str:
    if query_lang in LANGS:
        return str(query_lang)
    for _, tag in _accepted(accept_language or ""):
        if tag in LANGS:
            return tag
    return "en"
