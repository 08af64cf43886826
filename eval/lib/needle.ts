/**
 * The needle test's material and its scoring (eval/needle.ts runs it): long texts made of corpus
 * abstracts, each with one made-up sentence (the needle) inserted at a sentence boundary well past
 * the model's first window, and one paraphrase query per needle. Pure and deterministic: the same
 * corpus and tokenizer give the same texts.
 *
 * Each needle is "The <occupation> <name> <deed>." and its query asks about the deed in other
 * words, naming the person by another word for their occupation: "The lighthouse keeper Oksana
 * Verbitskaya painted the family rowing boat turquoise in 1987." / "Which hue did the coastal
 * beacon attendant Oksana Verbitskaya choose for the hull of the small wooden craft?". Needle i
 * has occupation i mod 10 and deed ⌊i / 10⌋, so no two share both, and a name of its own: a query
 * is answered by its own text only, and shares no word with its needle but the name.
 */
import { codePointLength } from '../../embedder/src/core/truncate.js';
import type { Doc } from './dataset.js';
import type { HitPayload } from './heimdex.js';

/** The needle goes at the first sentence boundary with at least this many tokens before it. */
export const NEEDLE_AFTER_TOKENS = 400;
/** Tokens of corpus text each long text holds at least (the needle comes on top). */
export const MIN_TEXT_TOKENS = 600;
/** How many needles there are (occupations × deeds, one name each). */
export const MAX_NEEDLES = 100;

/** [in the needle, in the query] */
const OCCUPATIONS: readonly (readonly [string, string])[] = [
  ['lighthouse keeper', 'coastal beacon attendant'],
  ['beekeeper', 'honey farmer'],
  ['glassblower', 'furnace craftsman'],
  ['clockmaker', 'watch repairer'],
  ['ferry captain', 'skipper of the river crossing'],
  ['cartographer', 'mapmaker'],
  ['violin maker', 'luthier'],
  ['mountain guide', 'alpine escort'],
  ['night-shift baker', 'overnight bread artisan'],
  ['falconer', 'trainer of hunting birds'],
];

/** [the needle's deed, the query with {S} for "the <occupation> <name>"] */
const DEEDS: readonly (readonly [string, string])[] = [
  [
    'painted the family rowing boat turquoise in 1987',
    'Which hue did {S} choose for the hull of the small wooden craft?',
  ],
  [
    'kept exactly seventeen tortoises in a walled garden',
    'How many shelled reptiles did {S} look after at home?',
  ],
  [
    'learned Icelandic at the age of sixty-three',
    'Which Nordic tongue did {S} pick up late in life?',
  ],
  [
    'won a regional chess championship in 1974',
    'In what year did {S} take a local title at the board game of kings and pawns?',
  ],
  ['grew a pumpkin weighing 412 kilograms', 'How heavy was the giant squash that {S} cultivated?'],
  [
    'swam across the Strait of Gibraltar twice',
    'Which sea channel between Spain and Morocco did {S} cross without a vessel?',
  ],
  ['collected over three thousand antique keys', 'What old lock-opening objects does {S} hoard?'],
  [
    'composed an opera about a lost whale',
    'What stage musical drama concerning a missing sea mammal did {S} write?',
  ],
  ['refused to eat anything yellow for a decade', 'Which food colour did {S} avoid for ten years?'],
  [
    'built a harpsichord entirely out of driftwood',
    'What keyboard instrument did {S} construct from timber washed ashore?',
  ],
];

// Rare names, a few with letters outside ASCII (so code points and UTF-16 units differ).
const FIRST_NAMES = [
  'Oksana', 'Tiberiu', 'Wenonah', 'Eskil', 'Marisol', 'Thaddeus', 'Ingeborg', 'Kwabena', 'Solveig', 'Anselm',
  'Yevgenia', 'Bartholomew', 'Ximena', 'Ruairí', 'Zofia', 'Ignatius', 'Leocadia', 'Ottokar', 'Parisa', 'Casimir',
  'Henrike', 'Oluwaseun', 'Bronisława', 'Evander', 'Saoirse', 'Lysander', 'Thomasina', 'Kazimierz', 'Albertine', 'Florentyna',
  'Gwendolyn', 'Radomir', 'Ilse', 'Peregrine', 'Zenobia', 'Ambrose', 'Katalin', 'Osvaldo', 'Liesel', 'Cornelius',
  'Mehrnaz', 'Fyodor', 'Dagny', 'Leopold', 'Imelda', 'Vasilis', 'Hortense', 'Jarosław', 'Marguerite', 'Benedikt',
  'Ysolde', 'Emeric', 'Rosalind', 'Tancredi', 'Eulalia', 'Mstislav', 'Philippa', 'Anatol', 'Clementine', 'Gaspard',
  'Mirabel', 'Orest', 'Wilhelmina', 'Dobromir', 'Araminta', 'Sigmund', 'Cordelia', 'Valerian', 'Theodora', 'Leofric',
  'Berenike', 'Svyatoslav', 'Beatrix', 'Ezekiel', 'Perpetua', 'Gottfried', 'Seraphina', 'Augustin', 'Hermione', 'Bogumił',
  'Isolde', 'Fabrizio', 'Griselda', 'Cyprian', 'Jadwiga', 'Maximilian', 'Leontyne', 'Zebedee', 'Rosamund', 'Aurelio',
  'Eudora', 'Crispin', 'Ludmila', 'Barnaby', 'Guinevere', 'Ilarion', 'Philomena', 'Alaric', 'Hyacinth', 'Wenceslas',
]; // prettier-ignore

const SURNAMES = [
  'Verbitskaya', 'Moldoveanu', 'Quillfeather', 'Halvorsen', 'Etxeberria', 'Pemberton-Vane', 'Rautenstrauch', 'Asante-Mensah', 'Gudmundsdottir', 'Wolkenstein',
  'Zhelyabova', 'Featherstonehaugh', 'Iturralde', 'MacGillivray', 'Przybylska', 'Kowalczuk', 'Szczepańska', 'Habsburg-Lenz', 'Tehrani', 'Wiśniewski',
  'Oberhauser', 'Adebayo-Cole', 'Dąbrowska', 'Thistlewood', 'Ní Bhriain', 'Cavendish-Orme', 'Lindqvist', 'Zawadzki', 'Fontenoy', 'Wierzbicka',
  'Trelawney', 'Vukovich', 'Ostermann', 'Fairweather', 'Palmyrides', 'Ashcombe', 'Horváth-Kiss', 'Bettencourt', 'Sauerbrunn', 'Blackwood-Hale',
  'Farahani', 'Karamazin', 'Sigurdardottir', 'Eschenbach', 'Marchetti-Roux', 'Papadakis', 'Delacroix-Vey', 'Kuczyński', 'Beauregard', 'Zollikofer',
  'Penhaligon', 'Esterházy', 'Whitcombe', 'Gattopardo', 'Montalbán', 'Obolenskaya', 'Thorncastle', 'Brankovich', 'Fitzwilliam', 'Duplessis',
  'Ravenscroft', 'Hrushevsky', 'Vanderslice', 'Mazowiecki', 'Greenhalgh', 'Falkenrath', 'Pendragon-Moss', 'Castellanos', 'Vasquez-Laine', 'Ealdwine',
  'Kessler-Haupt', 'Trubetskoy', 'Lockhart-Finch', 'Nightingale-Roe', 'Bellweather', 'Rothenberger', 'Silverthorne', 'Casagrande', 'Wetherell', 'Grabowska',
  'Tintagel', 'Bonaventura', 'Hohenau', 'Pietrzyk', 'Wainscott', 'Liechtenauer', 'Ospovat', 'Quarrington', 'Villanueva-Roig', 'Amberleigh',
  'Hesketh', 'Drozdowska', 'Ramsbottom', 'Carrow-Lisle', 'Fairbrother', 'Yaroslavna', 'Wetterhahn', 'Ardizzone', 'Marchbank', 'Skovgaard',
]; // prettier-ignore

export interface NeedleSpec {
  /** The long text's segment id: `needle-000` … */
  id: string;
  name: string;
  /** The inserted sentence. */
  needle: string;
  /** The paraphrase that asks for it. */
  query: string;
}

/** The first `count` needles and their queries (at most MAX_NEEDLES). */
export function needleSpecs(count: number = MAX_NEEDLES): NeedleSpec[] {
  if (!Number.isInteger(count) || count < 1 || count > MAX_NEEDLES) {
    throw new RangeError(`there are 1 to ${MAX_NEEDLES} needles, not ${count}`);
  }
  return Array.from({ length: count }, (_, i) => {
    const [occupation, occupationAlias] = OCCUPATIONS[i % OCCUPATIONS.length] as [string, string];
    const [deed, question] = DEEDS[Math.floor(i / OCCUPATIONS.length)] as [string, string];
    const name = `${FIRST_NAMES[i] as string} ${SURNAMES[i] as string}`;
    return {
      id: `needle-${String(i).padStart(3, '0')}`,
      name,
      needle: `The ${occupation} ${name} ${deed}.`,
      query: question.replace('{S}', `the ${occupationAlias} ${name}`),
    };
  });
}

export interface NeedleText extends NeedleSpec {
  text: string;
  /** The needle's code points in `text`: [needleStart, needleEnd). */
  needleStart: number;
  needleEnd: number;
  /** Model tokens of the text before the needle, and of the whole text (special tokens excluded). */
  tokensBefore: number;
  tokens: number;
  /** The corpus documents the text is made of, in order. */
  sources: string[];
}

const SENTENCES = new Intl.Segmenter('en', { granularity: 'sentence' });

/**
 * `count` long texts, text i made of the next corpus documents in order (no document used twice)
 * joined as paragraphs until they hold `minTokens` tokens, with needle i inserted at the start of
 * the first sentence that has `after` tokens or more before it (never the last sentence).
 * `countTokens` counts a string's model tokens, special tokens excluded.
 */
export function buildNeedleTexts(
  docs: readonly Doc[],
  countTokens: (text: string) => number,
  opts: { count?: number; after?: number; minTokens?: number } = {},
): NeedleText[] {
  const after = opts.after ?? NEEDLE_AFTER_TOKENS;
  const minTokens = opts.minTokens ?? MIN_TEXT_TOKENS;
  let next = 0;
  return needleSpecs(opts.count).map((spec) => {
    const parts: Doc[] = [];
    for (;;) {
      const doc = docs[next++];
      if (!doc) throw new Error(`the corpus ran out of documents at ${spec.id}`);
      parts.push(doc);
      const filler = parts.map((d) => d.text).join('\n\n');
      if (countTokens(filler) < minTokens) continue;
      const at = insertionPoint(filler, countTokens, after);
      if (at === null) continue;
      const before = filler.slice(0, at.index);
      const text = `${before}${spec.needle} ${filler.slice(at.index)}`;
      const needleStart = codePointLength(before);
      return {
        ...spec,
        text,
        needleStart,
        needleEnd: needleStart + codePointLength(spec.needle),
        tokensBefore: at.tokensBefore,
        tokens: countTokens(text),
        sources: parts.map((d) => d.id),
      };
    }
  });
}

/**
 * The UTF-16 index of the first sentence start (not the text's last sentence) with at least
 * `after` tokens before it, and those tokens; null when there is none. Sentences end with their
 * trailing whitespace, so their counts add up; the chosen prefix is counted once more, exactly.
 */
function insertionPoint(
  text: string,
  countTokens: (text: string) => number,
  after: number,
): { index: number; tokensBefore: number } | null {
  const starts = [...SENTENCES.segment(text)].map((s) => ({ index: s.index, text: s.segment }));
  let estimate = 0;
  for (let k = 0; k + 1 < starts.length; k++) {
    estimate += countTokens((starts[k] as { text: string }).text);
    if (estimate < after) continue;
    const index = (starts[k + 1] as { index: number }).index;
    const tokensBefore = countTokens(text.slice(0, index));
    if (tokensBefore >= after) return { index, tokensBefore };
  }
  return null;
}

/** Whether a hit's chunk [chunk_start, chunk_end) holds the needle's code points. */
export type Coverage = 'whole' | 'part' | 'none' | 'unknown';

export function coverage(payload: HitPayload, needleStart: number, needleEnd: number): Coverage {
  const { chunk_start: start, chunk_end: end } = payload;
  if (start === undefined || end === undefined) return 'unknown';
  if (start <= needleStart && end >= needleEnd) return 'whole';
  return start < needleEnd && end > needleStart ? 'part' : 'none';
}

/** One query's outcome: its text's rank (null: not returned) and the first result's chunk. */
export interface NeedleOutcome {
  id: string;
  rank: number | null;
  /** The first result's chunk, when it is the needle's text; null otherwise. */
  top: {
    chunkIndex: number | null;
    chunkCount: number | null;
    chunkStart: number | null;
    chunkEnd: number | null;
    coverage: Coverage;
  } | null;
}

/** A query's outcome from the API's results (segment ids, best first). */
export function needleOutcome(
  text: Pick<NeedleText, 'id' | 'needleStart' | 'needleEnd'>,
  results: readonly { payload: HitPayload }[],
): NeedleOutcome {
  const at = results.findIndex((r) => r.payload.segment_id === text.id);
  const first = results[0]?.payload;
  return {
    id: text.id,
    rank: at < 0 ? null : at + 1,
    top:
      at === 0 && first
        ? {
            chunkIndex: first.chunk_index ?? null,
            chunkCount: first.chunk_count ?? null,
            chunkStart: first.chunk_start ?? null,
            chunkEnd: first.chunk_end ?? null,
            coverage: coverage(first, text.needleStart, text.needleEnd),
          }
        : null,
  };
}

/** Rank buckets of the distribution, in order: [label, lowest rank, highest rank]. */
export const RANK_BUCKETS: readonly (readonly [string, number, number])[] = [
  ['1', 1, 1],
  ['2–3', 2, 3],
  ['4–10', 4, 10],
  ['11–100', 11, 100],
];

export interface NeedleSummary {
  queries: number;
  rank1: number;
  /** Queries per RANK_BUCKETS label, plus `not returned`. */
  ranks: Record<string, number>;
  /** Mean reciprocal rank (0 for a text not returned). */
  mrr: number;
  /** Rank-1 hits by whether their chunk holds the needle. */
  coverage: Record<Coverage, number>;
  /** Rank-1 hits from a chunk other than the text's first. */
  rank1LaterChunk: number;
}

export function summarizeNeedles(outcomes: readonly NeedleOutcome[]): NeedleSummary {
  const ranks: Record<string, number> = Object.fromEntries(
    [...RANK_BUCKETS.map(([label]) => label), 'not returned'].map((l) => [l, 0]),
  );
  const cover: Record<Coverage, number> = { whole: 0, part: 0, none: 0, unknown: 0 };
  let rr = 0;
  let later = 0;
  for (const o of outcomes) {
    const bucket =
      o.rank === null
        ? 'not returned'
        : (RANK_BUCKETS.find(
            ([, lo, hi]) => (o.rank as number) >= lo && (o.rank as number) <= hi,
          )?.[0] ?? 'not returned');
    ranks[bucket] = (ranks[bucket] ?? 0) + 1;
    if (o.rank !== null) rr += 1 / o.rank;
    if (o.top) {
      cover[o.top.coverage]++;
      if ((o.top.chunkIndex ?? 0) > 0) later++;
    }
  }
  return {
    queries: outcomes.length,
    rank1: outcomes.filter((o) => o.rank === 1).length,
    ranks,
    mrr: outcomes.length > 0 ? rr / outcomes.length : NaN,
    coverage: cover,
    rank1LaterChunk: later,
  };
}
