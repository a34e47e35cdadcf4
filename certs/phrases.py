"""The English prose of signed records and journals, in the technician's language.

Reasons, notes and details are written in English by the layers below the station (the journal,
the worker, the record, the certificate builder, firmware steps, diagnostics, protection) and are
*kept* in English in what is signed: a record says what happened in one language, for every
auditor.  People read them translated: the PDF in its language (:mod:`certs.page`) and the station's
screens and commands (``station.i18n.tr``) both go through :func:`translate`.

A phrase is an English template with ``{named}`` fields and its translation.  A text is translated
when a template matches it whole (templates that start with words first, then the most specific, counted
in literal characters; number fields match numbers only);
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

from certs.i18n import FACT_LABELS

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
    # -- diagnostics: SMART, quick tests, verdicts (shown by the station; drive health in certificates)
    ("smartctl printed no JSON", "smartctl n'a rien renvoyé de lisible"),
    ("smartctl printed no JSON ({detail})", "smartctl n'a rien renvoyé de lisible ({detail})"),
    ("smartctl could not open or identify the device", "smartctl n'a pas pu ouvrir ou identifier le disque"),
    ("the drive reports its overall SMART health as FAILED", "le disque déclare sa santé SMART en ÉCHEC"),
    ("the drive reports its overall SMART health as PASSED", "le disque déclare sa santé SMART bonne"),
    (
        "attributes at or below their failure threshold: {names}",
        "relevés au seuil de défaillance ou en dessous : {names}",
    ),
    (
        "the device does not support SMART (or its bridge does not pass it through)",
        "le disque n'a pas de SMART (ou son adaptateur ne le transmet pas)",
    ),
    ("SMART is disabled on the device", "SMART est désactivé sur le disque"),
    (
        "smartctl could not read an overall health status from the device",
        "smartctl n'a pas pu lire l'état de santé du disque",
    ),
    ("NVMe critical warning: {bits}", "alerte critique NVMe : {bits}"),
    (
        "smartctl reports prefail attributes at or below threshold",
        "smartctl signale des relevés critiques au seuil de défaillance",
    ),
    ("smartctl was killed by signal {n}", "smartctl a été arrêté par le signal {n}"),
    ("command line did not parse", "ligne de commande refusée"),
    (
        "device open failed, or device did not return an IDENTIFY response",
        "le disque n'a pas pu être ouvert, ou n'a pas répondu à l'identification",
    ),
    (
        "some SMART or other command to the disk failed, or a checksum error in a SMART data structure",
        "une commande SMART a échoué, ou une donnée SMART est corrompue",
    ),
    ("SMART status check returned 'DISK FAILING'", "le contrôle SMART répond « disque défaillant »"),
    ("prefail attributes found at or below their threshold", "relevés critiques au seuil de défaillance"),
    (
        "some usage or prefail attributes were at or below their threshold in the past",
        "des relevés ont atteint leur seuil de défaillance par le passé",
    ),
    (
        "the device error log contains records of errors",
        "le journal d'erreurs du disque contient des erreurs",
    ),
    ("the self-test log contains records of errors", "le journal des autotests contient des erreurs"),
    ("available spare below threshold", "réserve disponible sous le seuil"),
    ("temperature above or below threshold", "température hors des limites"),
    (
        "NVM subsystem reliability degraded (media or internal errors)",
        "fiabilité dégradée (erreurs du support ou internes)",
    ),
    ("media placed in read-only mode", "support passé en lecture seule"),
    ("volatile memory backup device failed", "sauvegarde de la mémoire volatile en panne"),
    (
        "persistent memory region read-only or unreliable",
        "mémoire persistante en lecture seule ou peu fiable",
    ),
    ("drive {dev} must be recycled: replace it", "le disque {dev} est à recycler : remplacez-le"),
    ("drive {dev} should be replaced", "le disque {dev} devrait être remplacé"),
    ("health of drive {dev} unknown", "santé du disque {dev} inconnue"),
    ("cpu test failed", "test du processeur en échec"),
    ("ram test failed", "test de la mémoire en échec"),
    ("battery test failed", "test de la batterie en échec"),
    ("portable machine without a battery", "portable sans batterie"),
    ("battery (none found, chassis type unknown)", "batterie (aucune trouvée, type de boîtier inconnu)"),
    ("drive {dev}", "disque {dev}"),
    ("cpu_test", "test du processeur"),
    ("ram_test", "test de la mémoire"),
    ("battery_test", "test de la batterie"),
    ("chassis_type", "type de boîtier"),
    ("battery_wear_percent", "usure de la batterie (%)"),
    ("battery_cycle_count", "cycles de charge de la batterie"),
    ("ram_total_gib", "mémoire totale (Gio)"),
    ("cpu_max_temperature_c", "température maximale du processeur (°C)"),
    ("cpu_throttle_events", "ralentissements thermiques du processeur"),
    ("no battery found", "aucune batterie trouvée"),
    ("cancelled", "annulé"),
    ("cancelled before the end", "annulé avant la fin"),
    ("no computation finished in the time given", "aucun calcul terminé dans le temps donné"),
    ("{n} wrong SHA-256 results under load", "{n} résultats SHA-256 faux sous charge"),
    (
        "{total} SHA-256 results on {n} threads, all correct",
        "{total} résultats SHA-256 sur {n} cœurs logiques, tous justes",
    ),
    ("{n} thermal throttling events", "{n} ralentissements thermiques"),
    ("{n} bytes read back wrong", "{n} octets relus faux"),
    ("{stopped} before any pattern completed", "{stopped} avant la fin du premier motif"),
    ("{done} of {total} patterns over {size} MiB correct", "{done} motifs sur {total} justes sur {size} Mio"),
    ("all {done} patterns over {size} MiB correct", "les {done} motifs justes sur {size} Mio"),
    ("time bound reached", "temps imparti écoulé"),
    ("cannot open for reading: {error}", "lecture impossible : {error}"),
    ("nothing could be read", "rien n'a pu être lu"),
    ("read {n} MiB at {rate} MB/s", "{n} Mio lus à {rate} Mo/s"),
    (
        "{name}: reports Charging but its level fell by {n} %",
        "{name} : dit charger mais son niveau a baissé de {n} %",
    ),
    (
        "{name}: reports Discharging but its level rose by {n} %",
        "{name} : dit se décharger mais son niveau a monté de {n} %",
    ),
    (
        "{name}: discharging while the charger is online (charger or battery fault)",
        "{name} : se décharge alors que le chargeur est branché (chargeur ou batterie en panne)",
    ),
    ("{name}: no charge state and no level reported", "{name} : ni état de charge ni niveau"),
    ("{name}: {status} at {level} %", "{name} : {status} à {level} %"),
    ("Charging", "en charge"),
    ("Discharging", "en décharge"),
    ("Full", "pleine"),
    ("Not charging", "pas en charge"),
    # -- the shipped grading rules' reasons (diagnostics/rules.toml; a workshop's own stay as written)
    (
        "sectors waiting to be reallocated: the surface is failing now",
        "secteurs en attente de réallocation : la surface lâche",
    ),
    (
        "sectors that could not be read back even by the drive itself",
        "secteurs que le disque lui-même ne relit plus",
    ),
    (
        "many reallocated sectors: the drive is wearing out fast",
        "beaucoup de secteurs réalloués : le disque s'use vite",
    ),
    (
        "reallocated sectors above the workshop threshold: replace the drive",
        "secteurs réalloués au-delà du seuil de l'atelier : remplacez le disque",
    ),
    (
        "the drive has returned uncorrectable read errors to the host",
        "le disque a renvoyé des erreurs de lecture irrécupérables",
    ),
    (
        "SCSI grown defect list above the workshop threshold",
        "défauts SCSI apparus au-delà du seuil de l'atelier",
    ),
    (
        "SCSI uncorrected read/write/verify errors",
        "erreurs SCSI non corrigées (lecture, écriture, vérification)",
    ),
    ("NVMe media and data integrity errors", "erreurs NVMe du support et d'intégrité des données"),
    ("NVMe critical warning raised", "alerte critique NVMe levée"),
    ("SSD rated endurance nearly used up", "endurance prévue du SSD presque épuisée"),
    ("SSD wear above the workshop threshold", "usure du SSD au-delà du seuil de l'atelier"),
    (
        "very high power-on time (more than about 5.7 years powered)",
        "très longue durée de fonctionnement (plus de 5,7 ans environ sous tension)",
    ),
    ("drive running hot: check the cooling", "disque trop chaud : vérifiez le refroidissement"),
    ("sequential reads far too slow: the drive is struggling", "lecture bien trop lente : le disque peine"),
    (
        "battery has lost too much of its design capacity: replace it",
        "la batterie a perdu trop de sa capacité d'origine : remplacez-la",
    ),
    ("battery charge cycles above the workshop threshold", "cycles de charge au-delà du seuil de l'atelier"),
    (
        "too little memory for current systems: add a module",
        "trop peu de mémoire pour les systèmes actuels : ajoutez une barrette",
    ),
    (
        "CPU too hot under load: clean the fan and renew the thermal paste",
        "processeur trop chaud sous charge : nettoyez le ventilateur et changez la pâte thermique",
    ),
    (
        "CPU throttled under a short load: check the cooling",
        "processeur ralenti dès une courte charge : vérifiez le refroidissement",
    ),
    # -- protection (the drive list's details)
    (
        "is open in another program: {device} is used by {who}",
        "est ouvert par un autre programme : {device} est utilisé par {who}",
    ),
    ("{program} (pid {pid})", "{program} (processus {pid})"),
    (
        "is read-only (the kernel reports ro=1): it cannot be overwritten",
        "est en lecture seule (le noyau l'indique) : impossible de le réécrire",
    ),
    # -- the lot reference and the asset number (host/refs.py): what the technician typed or scanned
    ("the lot reference is empty", "la référence du lot est vide"),
    (
        "the lot reference is {n} characters long; at most 64",
        "la référence du lot fait {n} caractères ; 64 au plus",
    ),
    (
        "the lot reference may hold only letters, digits and . _ / - (not {chars})",
        "la référence du lot ne peut contenir que des lettres, des chiffres et . _ / - (pas {chars})",
    ),
    (
        "e.g. LOT-2026-03: letters, digits and . _ / -, at most 64",
        "par exemple LOT-2026-03 : lettres, chiffres et . _ / -, 64 au plus",
    ),
    (
        "the asset number is {n} characters long; at most 200",
        "le numéro d'inventaire fait {n} caractères ; 200 au plus",
    ),
    ("the asset number contains a NUL character", "le numéro d'inventaire contient un caractère NUL"),
    (
        "the asset number printed on the machine, at most 200",
        "le numéro d'inventaire inscrit sur la machine, 200 caractères au plus",
    ),
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

#: Diagnostics facts by name (battery_wear_percent...), as the PDF's health section names them.
FR += tuple(FACT_LABELS["fr"].items())

TABLES: dict[str, tuple[tuple[str, str], ...]] = {"fr": FR}

#: Fields that hold a list ("a; b") or a whole sentence; every other field stops at a "; ".
_LONG_FIELDS = frozenset(
    {"reasons", "why", "details", "detail", "note", "steps", "patterns", "names", "bits"}
)
#: Fields that hold a number (so "{n} unwritable range(s)" never swallows a sentence).
_NUMBER_FIELDS = frozenset(
    {
        "i",
        "n",
        "total",
        "written",
        "offset",
        "count",
        "before",
        "after",
        "size",
        "planned_size",
        "done",
        "pct",
    }
    | {"rate", "value", "limit"}
)

_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class _Phrase:
    pattern: re.Pattern[str]
    fields: tuple[str, ...]
    target: str
    literal: int  # characters outside the fields: the more, the more specific
    prefix: int  # literal characters before the first field: a template that starts with words first


def _field(name: str) -> str:
    if name in _NUMBER_FIELDS:
        return r"-?[\d.,]+"
    return ".+?" if name in _LONG_FIELDS else "[^;]+?"


def _compile(english: str, target: str) -> _Phrase:
    parts = _FIELD.split(english)  # literal, field, literal, field, ..., literal
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>{_field(p)})" for i, p in enumerate(parts))
    fields = tuple(parts[1::2])
    if sorted(fields) != sorted(_FIELD.findall(target)):
        raise ValueError(f"the translation of {english!r} does not keep its fields")
    literal = sum(len(p) for p in parts[0::2])
    return _Phrase(re.compile(regex, re.DOTALL), fields, target, literal, len(parts[0]))


class Phrasebook:
    """The phrases of one language, ready to match."""

    def __init__(self, pairs: tuple[tuple[str, str], ...]) -> None:
        self.exact = {en: target for en, target in pairs if not _FIELD.search(en)}
        templates = [_compile(en, target) for en, target in pairs if _FIELD.search(en)]
        # "not erased: {reasons}" before "{n} unwritable range(s)": words first, then the most words.
        self.templates = sorted(templates, key=lambda p: (-p.prefix, -p.literal))

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
