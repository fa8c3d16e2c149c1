"""French public holidays (jours fériés), computed: no table to refresh every year, no dependency.

Mairies close on public holidays, so no appointment slot falls on one. The list is the 11
metropolitan days of the Code du travail (art. L3133-1). Alsace-Moselle (Bas-Rhin, Haut-Rhin,
Moselle) adds Good Friday and 26 December under its local law. Overseas departments add the
abolition-of-slavery day, which differs per department: pass your own callable to
``candidate_slots(holidays=...)`` there.
"""

from __future__ import annotations

from datetime import date, timedelta


def easter_sunday(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (anonymous algorithm of Meeus/Jones/Butcher)."""
    if not 1583 <= year <= 9999:
        raise ValueError(f"Année hors du calendrier grégorien : {year}.")
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 (the algorithm's own names)
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return date(year, month, day + 1)


def french_public_holidays(year: int, *, alsace_moselle: bool = False) -> dict[date, str]:
    """The public holidays of ``year``, date → French name, in date order.

    Whit Monday is included: it is the "journée de solidarité" in many workplaces, but it stays
    a public holiday and town halls are closed on it.
    """
    easter = easter_sunday(year)
    days = {
        date(year, 1, 1): "Jour de l'an",
        easter + timedelta(days=1): "Lundi de Pâques",
        date(year, 5, 1): "Fête du Travail",
        date(year, 5, 8): "Victoire 1945",
        easter + timedelta(days=39): "Ascension",
        easter + timedelta(days=50): "Lundi de Pentecôte",
        date(year, 7, 14): "Fête nationale",
        date(year, 8, 15): "Assomption",
        date(year, 11, 1): "Toussaint",
        date(year, 11, 11): "Armistice 1918",
        date(year, 12, 25): "Noël",
    }
    if alsace_moselle:
        days[easter - timedelta(days=2)] = "Vendredi saint"
        days[date(year, 12, 26)] = "Saint-Étienne"
    # Ascension can fall on 1 May or 8 May (e.g. 2008): one date, one name is enough.
    return dict(sorted(days.items()))
