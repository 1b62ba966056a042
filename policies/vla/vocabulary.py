"""The fixed English vocabulary of the offline tiny tokenizer: words of robot instructions.

Lower-case words; digits are split one by one and punctuation stands alone (see ``tokenizer.py``),
so numbers and punctuation need only single characters here. A word outside this list becomes the
unknown token; it is never an error.
"""

from __future__ import annotations

# Order is part of the checkpoint format: a token's id is its position after the special tokens.
# New words go into ``ADDED_WORDS`` (after the digits and punctuation), never in between, so that
# every saved model's ids stay the same; a saved tokenizer carries its own vocabulary anyway.
_WORD_TEXT = """
a an the this that these those it its them they their there here some any all each every both
one two three four five six seven eight nine ten first second third last next other another
and or but not no nor then than if when while until before after again once more less only just
to of in on at by for from with without into onto out off over under above below between behind
front back left right up down top bottom side middle center centre inside outside near far away
toward towards through around along across beside next against upon within
is are be was were been being do does did done have has had can could should would will must may
please now slowly quickly carefully gently firmly fast slow small large big little tall short long
pick place put lift lower raise drop grasp grab grip release hold let go move push pull slide
rotate turn twist flip roll tilt open close shut press tap touch point reach stop wait stay
stack unstack sort arrange align insert remove take bring give hand fetch carry transfer pour fill
empty wipe clean sweep fold unfold hang plug unplug screw unscrew throw toss shake stir mix cut
scoop spread draw write follow find look search locate return home reset approach avoid keep
set make use try finish start continue repeat show
object objects item items thing things block blocks cube cubes ball balls box boxes cup cups mug
bowl bowls plate plates bottle bottles can cans jar lid lids cap pen pencil marker book books
tray bin basket bag towel cloth sponge spoon fork knife pan pot kettle shelf drawer door cabinet
table desk counter sink stove oven microwave fridge refrigerator handle knob button switch lever
peg hole slot ring rod stick tool toy doll fruit apple banana orange lemon carrot egg bread
cable wire plug socket charger phone remote keyboard mouse screen laptop paper sheet card
corner edge surface floor wall ground goal target position location area zone region spot
gripper arm hand finger fingers robot camera base tip end
red green blue yellow orange purple pink black white gray grey brown silver gold dark light
bright clear transparent striped round square flat wooden metal plastic glass soft hard
empty full heavy light closed opened same different nearest closest farthest furthest leftmost
rightmost topmost highest lowest biggest smallest largest
degrees degree centimeters centimetres cm meters mm inches times time seconds second step steps
half quarter way bit
"""

ROBOT_WORDS: tuple[str, ...] = tuple(dict.fromkeys(_WORD_TEXT.split()))  # de-duplicated, order kept
DIGITS: tuple[str, ...] = tuple("0123456789")
PUNCTUATION: tuple[str, ...] = tuple(".,;:!?'\"-()/&+%")

#: Words added after the first vocabulary shipped, in the order added (ids follow the punctuation).
#: Meta-World's 50 task instructions (``sim.metaworld.tasks``), so none of them has an unknown word.
_ADDED_TEXT = """
puck nut dunk basketball cover bypass coffee machine dial revolving joint lock rotating clockwise
unlock faucet hammer sideways get kick soccer using window
"""
ADDED_WORDS: tuple[str, ...] = tuple(w for w in dict.fromkeys(_ADDED_TEXT.split()) if w not in ROBOT_WORDS)
