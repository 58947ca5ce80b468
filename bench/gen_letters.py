#!/usr/bin/env python3
"""Write N letters of realistic shape to standard output, for bench/run.sh.

    bench/gen_letters.py N > letters.xml

Ids run 1..N.  Subjects are mostly Cyrillic (two bytes a letter in UTF-8,
six once percent-encoded), some with entities, a character reference or
CDATA, like sample.xml; addresses vary in length.  The output depends on
N only, so that every run of the bench sends the same bytes.
"""
import sys

SUBJECTS = [
    "Ваш заказ №{n} отправлен",
    "Привет &amp; добро пожаловать, {n}",
    "Счёт на оплату &#8470; {n} от ООО «Ромашка»",
    "Подтвердите адрес электронной почты",
    "Приглашение на вебинар «C и libcurl», поток {n}",
    "Your invoice for November, #{n}",
    "<![CDATA[Скидка 50% & бесплатная доставка до {n}]]>",
    "Новости недели — {n} новых сообщений",
    "Re: встреча во вторник",
    "Напоминание: осталось {n} дней до окончания подписки",
]
NAMES = ["ivan", "maria", "olga.petrova", "dmitry", "anna", "sergey.ivanov",
         "john.smith", "elena", "tom", "natalia.kuznetsova"]
DOMAINS = ["example.com", "example.ru", "mail.example.org"]


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: gen_letters.py N")
    n = int(sys.argv[1])
    out = sys.stdout
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n<emails>\n')
    chunk = []
    for i in range(1, n + 1):
        subject = SUBJECTS[i % len(SUBJECTS)].format(n=i % 10007)
        to = "%s%d@%s" % (NAMES[i % len(NAMES)], i % 997,
                          DOMAINS[i % len(DOMAINS)])
        chunk.append('  <email id="%d">\n    <to>%s</to>\n'
                     '    <subject>%s</subject>\n  </email>\n'
                     % (i, to, subject))
        if len(chunk) == 10000:
            out.write("".join(chunk))
            chunk = []
    out.write("".join(chunk))
    out.write("</emails>\n")


if __name__ == "__main__":
    main()
