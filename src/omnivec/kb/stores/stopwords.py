"""Stop words of the lexical space, one list per language: both stores drop the same words (LanceDB's FTS index is
given these lists as its custom stop words, the Qdrant store drops them before weighting terms).

English is Lucene's default English list (``EnglishAnalyzer``, 33 words). The other lists are short on purpose:
articles, the commonest prepositions, conjunctions, pronouns and auxiliaries, the words that carry no topic. BM25's
IDF already weighs frequent words down, so a short list loses nothing a long one would keep, and never drops a
word a query means (a long list drops "system", "work", "part" in some languages). Languages without a list here
keep every word."""

from __future__ import annotations

STOP_WORDS: dict[str, frozenset[str]] = {
    "english": frozenset(
        "a an and are as at be but by for if in into is it no not of on or such that the their then there these "
        "they this to was will with".split()),
    "french": frozenset(
        "le la les l un une des du de d et ou à au aux en dans par pour sur avec sans sous ce cet cette ces il "
        "elle ils elles on nous vous je tu que qui quoi dont est sont être a ont été ne pas se sa son ses leur "
        "leurs mais donc car ni y".split()),
    "german": frozenset(
        "der die das den dem des ein eine einer eines einem einen und oder aber als auch auf aus bei bis durch "
        "für gegen in im ins mit nach von vor zu zum zur ist sind war waren wird werden hat haben sein es er sie "
        "wir ihr ich du nicht kein keine dass daß wie so sich".split()),
    "spanish": frozenset(
        "el la los las lo un una unos unas de del al a en y o u e que por para con sin sobre entre es son fue "
        "ser está están ha han se su sus le les no ni como pero este esta estos estas ese esa".split()),
    "italian": frozenset(
        "il lo la i gli le l un uno una di del della dei degli delle a al alla ai agli alle da dal dalla in nel "
        "nella con su per tra fra e o ma che non è sono si ci come anche questo questa quello".split()),
    "portuguese": frozenset(
        "o a os as um uma uns umas de do da dos das em no na nos nas por pelo pela para com sem e ou mas que "
        "não é são foi ser se seu sua seus suas ao aos como este esta isso".split()),
    "dutch": frozenset(
        "de het een en of maar in op aan met van voor bij uit tot naar door over om te is zijn was waren wordt "
        "worden heeft hebben dat die dit deze niet geen ook als er hij zij ze wij we ik je u".split()),
}
