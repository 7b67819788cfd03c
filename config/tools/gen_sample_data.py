#!/usr/bin/env python3
"""Generate leadgate's sample data files under config/.

Run from anywhere:  python3 config/tools/gen_sample_data.py
Output is deterministic (fixed seeds, no set-order iteration).

Options:
  --calibrate   print the intercept that gives a 20% expected conversion
                rate for past-leads.csv, then exit without writing files.
  --verify-only re-run the checks on the existing files without rewriting.

Files written (all relative to config/):
  firmographics.csv, sample-leads.csv, sample-leads.MALFORMED.md,
  sample-leads.jsonl, free-email-domains.txt, disposable-email-domains.txt,
  accounts.csv, past-leads.csv

All people are fictional. Company names/domains are either fictional or
well-known real companies; employee/revenue/funding figures for real
companies are rounded approximations of public figures (employees are capped
at 200000), and their "tech" lists are illustrative only.

HIDDEN CONVERSION MODEL used for past-leads.csv (the "true" coefficients):

  z = B0
      + 1.80 * demo_requested            (1 if "yes")
      + 0.35 * min(pricing_visits, 8)
      + 0.02 * min(page_views, 40)
      + 0.60 * log10(employees)          (log10(30) when employees is empty)
      + 0.80 * senior_title              (C-level / Founder / President / VP / Head / Director)
      + 0.90 * budget_50k_plus           (budget == "50k+")
      + 0.35 * budget_10k_50k            (budget == "10k-50k")
      + 0.90 * timeline_now              (timeline == "now")
      + 0.35 * timeline_this_quarter     (timeline == "this quarter")
      - 1.40 * free_mail_domain
      - 2.20 * disposable_domain
      - 1.80 * student_or_intern_title
  B0 = -5.18   (calibrated with --calibrate for a ~20% overall rate)
  p(converted) = 1 / (1 + exp(-z));  converted = "yes" if U(0,1) < p
"""

import csv
import io
import json
import math
import os
import random
import re
import sys
import unicodedata
from datetime import datetime, timedelta, timezone

CONFIG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SEED = 20261122

# ---------------------------------------------------------------------------
# Hidden model coefficients (keep in sync with the docstring above)
# ---------------------------------------------------------------------------
B0 = -5.18
COEF = {
    "demo": 1.80,
    "pricing": 0.35,
    "page_views": 0.02,
    "log_employees": 0.60,
    "senior": 0.80,
    "budget_50k_plus": 0.90,
    "budget_10k_50k": 0.35,
    "timeline_now": 0.90,
    "timeline_quarter": 0.35,
    "free_mail": -1.40,
    "disposable": -2.20,
    "student_intern": -1.80,
}
MISSING_EMPLOYEES_ASSUMED = 30

# ---------------------------------------------------------------------------
# Reference lists
# ---------------------------------------------------------------------------
FREE_EMAIL_DOMAINS = [
    # Google / Yahoo / Microsoft / AOL / Apple
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "yahoo.it",
    "yahoo.es", "yahoo.ca", "yahoo.com.au", "yahoo.co.in", "yahoo.co.jp", "yahoo.com.br",
    "yahoo.com.mx", "ymail.com", "rocketmail.com", "outlook.com", "outlook.fr", "outlook.de",
    "hotmail.com", "hotmail.co.uk", "hotmail.fr", "hotmail.de", "hotmail.it", "live.com",
    "live.co.uk", "live.fr", "live.de", "live.ca", "live.com.au", "msn.com", "aol.com", "aol.co.uk",
    "aim.com", "icloud.com", "me.com", "mac.com",
    # privacy-focused / independent providers
    "protonmail.com", "protonmail.ch", "proton.me", "pm.me", "tutanota.com", "tuta.io",
    "fastmail.com", "fastmail.fm", "hey.com", "hushmail.com", "mailfence.com", "posteo.de",
    "mailbox.org", "runbox.com", "disroot.org", "riseup.net", "zoho.com", "zohomail.com",
    # mail.com / GMX / United Internet family and German providers
    "mail.com", "email.com", "usa.com", "gmx.de", "gmx.net", "gmx.com", "web.de", "freenet.de",
    "t-online.de",
    # Russia / Ukraine / Eastern Europe
    "yandex.ru", "yandex.com", "mail.ru", "inbox.ru", "rambler.ru", "ukr.net", "seznam.cz", "wp.pl",
    "o2.pl", "onet.pl",
    # China / Korea / India
    "qq.com", "foxmail.com", "163.com", "126.com", "yeah.net", "sina.com", "sohu.com", "aliyun.com",
    "naver.com", "daum.net", "hanmail.net", "nate.com", "rediffmail.com",
    # France / Italy / Benelux / Switzerland
    "laposte.net", "orange.fr", "wanadoo.fr", "free.fr", "sfr.fr", "libero.it", "virgilio.it",
    "tiscali.it", "alice.it", "telenet.be", "skynet.be", "xs4all.nl", "kpnmail.nl", "ziggo.nl",
    "bluewin.ch",
    # UK ISPs
    "btinternet.com", "sky.com", "virginmedia.com", "talktalk.net", "ntlworld.com",
    # US / Canada ISPs and legacy webmail
    "comcast.net", "verizon.net", "att.net", "sbcglobal.net", "bellsouth.net", "cox.net",
    "charter.net", "earthlink.net", "optonline.net", "juno.com", "lycos.com", "shaw.ca",
    "rogers.com", "sympatico.ca",
    # Australia / NZ / Brazil
    "bigpond.com", "optusnet.com.au", "xtra.co.nz", "terra.com.br", "uol.com.br", "bol.com.br",
    "ig.com.br",
]

DISPOSABLE_EMAIL_DOMAINS = [
    # Mailinator and its alias domains
    "mailinator.com", "mailinator.net", "mailinator.org", "mailinater.com", "mailin8r.com",
    "notmailinator.com", "tmailinator.com", "binkmail.com", "bobmail.info", "letthemeatspam.com",
    "reallymymail.com", "sendspamhere.com", "sogetthis.com", "spamthisplease.com",
    "thisisnotmyrealemail.com", "veryrealemail.com",
    # Guerrilla Mail family
    "guerrillamail.com", "guerrillamail.net", "guerrillamail.org", "guerrillamail.biz",
    "guerrillamail.de", "guerrillamail.info", "guerrillamailblock.com", "guerillamail.com",
    "sharklasers.com", "grr.la", "pokemail.net", "spam4.me",
    # 10 Minute Mail and friends
    "10minutemail.com", "10minutemail.net", "10minutemail.co.uk", "10minutemail.de",
    "10-minute-mail.com", "10minutesmail.com", "my10minutemail.com", "12minutemail.com",
    "20minutemail.com", "24hourmail.com", "30minutemail.com", "60minutemail.com", "5minutemail.net",
    "zehnminutenmail.de", "1secmail.com", "1secmail.net", "1secmail.org",
    # YOPmail
    "yopmail.com", "yopmail.fr", "yopmail.net",
    # TrashMail and German "Wegwerf" services
    "trashmail.com", "trashmail.net", "trashmail.de", "trashmail.me", "trashmail.at",
    "trashmail.io", "trashmail.org", "trash-mail.com", "trash-mail.de", "trashmailer.com",
    "trashymail.com", "trashdevil.com", "trashemail.de", "kurzepost.de", "proxymail.eu",
    "wegwerfmail.de", "wegwerfmail.net", "wegwerfmail.org", "wegwerfemail.de", "spambog.com",
    "discardmail.com", "discardmail.de", "spamoff.de", "schrott-email.de", "safersignup.de",
    "dontsendmespam.de", "antispam.de", "tempmailer.de",
    # temp-mail style services
    "temp-mail.org", "temp-mail.com", "temp-mail.ru", "tempail.com", "tempemail.net",
    "tempinbox.com", "tempinbox.co.uk", "tempmailer.com", "tempmailo.com", "tempomail.fr",
    "temporaryemail.net", "temporaryinbox.com", "tempr.email", "discard.email", "mytemp.email",
    "mytempemail.com", "email-temp.com", "mailtemp.info", "tmpmail.net", "tmpmail.org", "tmail.ws",
    "courrieltemporaire.com", "mail-temporaire.fr", "emailtemporanea.com", "emailtemporario.com.br",
    "throwawaymail.com", "throwawayemailaddress.com",
    # other well-known throwaway inbox services
    "getnada.com", "nada.email", "dispostable.com", "maildrop.cc", "mintemail.com", "mohmal.com",
    "fakeinbox.com", "spamgourmet.com", "emailondeck.com", "mailnesia.com", "mailcatch.com",
    "mailexpire.com", "mailforspam.com", "mailmetrash.com", "mailmoat.com", "mailnull.com",
    "mailpoof.com", "mailsac.com", "mailscrap.com", "mailshell.com", "mailtothis.com",
    "mailzilla.com", "mbx.cc", "meltmail.com", "moakt.com", "dropmail.me", "inboxkitten.com",
    "harakirimail.com", "incognitomail.com", "incognitomail.org", "instantemailaddress.com",
    "jetable.com", "jetable.net", "jetable.org", "anonbox.net", "anonymbox.com", "getairmail.com",
    "getonemail.com", "emailfake.com", "email-fake.com", "fakemail.fr", "fakemailgenerator.com",
    "armyspy.com", "cuvox.de", "dayrep.com", "jourrapide.com", "rhyta.com", "superrito.com",
    "teleworm.us", "deadaddress.com", "despam.it", "despammed.com", "dodgeit.com", "dodgit.com",
    "dontreg.com", "easytrashmail.com", "emailsensei.com", "ephemail.net", "explodemail.com",
    "garbagemail.org", "haltospam.com", "hatespam.org", "ieatspam.eu", "ieatspam.info",
    "killmail.com", "killmail.net", "no-spam.ws", "nobulk.com", "noclickemail.com", "nospamfor.us",
    "nowmymail.com", "oneoffemail.com", "onewaymail.com", "quickinbox.com", "rejectmail.com",
    "selfdestructingmail.com", "shieldemail.com", "shiftmail.com", "spamavert.com", "spambob.com",
    "spambox.us", "spamcero.com", "spamex.com", "spamfree24.org", "spamhole.com", "spamify.com",
    "spaml.com", "spammotel.com", "spamobox.com", "spamslicer.com", "spamspot.com",
    "spamthis.co.uk", "spamtrail.com", "whyspam.me", "willselfdestruct.com", "zoemail.org",
]

# ---------------------------------------------------------------------------
# Real companies (approximate public figures; tech lists illustrative)
# domain, name, industry, employees, revenue_usd, country, state, city,
# funding_total_usd, founded_year, own_tech
# ---------------------------------------------------------------------------
REAL_COMPANIES = [
    # --- United States ---
    ("stripe.com", "Stripe", "Financial Services", 8000, 5100000000, "US", "CA", "South San Francisco", 9400000000, 2010, "stripe"),
    ("datadog.com", "Datadog", "Software", 6500, 2680000000, "US", "NY", "New York", 148000000, 2010, "datadog"),
    ("hubspot.com", "HubSpot", "Software", 7600, 2630000000, "US", "MA", "Cambridge", 100000000, 2006, "hubspot"),
    ("salesforce.com", "Salesforce", "Software", 72000, 34900000000, "US", "CA", "San Francisco", None, 1999, "salesforce"),
    ("snowflake.com", "Snowflake", "Software", 7000, 2810000000, "US", "MT", "Bozeman", 1400000000, 2012, "snowflake"),
    ("twilio.com", "Twilio", "Software", 5500, 4340000000, "US", "CA", "San Francisco", 261000000, 2008, "twilio"),
    ("gitlab.com", "GitLab", "Software", 2100, 580000000, "US", "CA", "San Francisco", 426000000, 2011, "gitlab"),
    ("hashicorp.com", "HashiCorp", "Software", 2200, 583000000, "US", "CA", "San Francisco", 349000000, 2012, "terraform"),
    ("cloudflare.com", "Cloudflare", "Software", 4000, 1670000000, "US", "CA", "San Francisco", 332000000, 2009, "cloudflare"),
    ("okta.com", "Okta", "Software", 5900, 2610000000, "US", "CA", "San Francisco", 229000000, 2009, "okta"),
    ("mongodb.com", "MongoDB", "Software", 5000, 1680000000, "US", "NY", "New York", 311000000, 2007, "mongodb"),
    ("confluent.io", "Confluent", "Software", 2700, 963000000, "US", "CA", "Mountain View", 456000000, 2014, "kafka"),
    ("databricks.com", "Databricks", "Software", 7000, 2400000000, "US", "CA", "San Francisco", 14000000000, 2013, "databricks"),
    ("figma.com", "Figma", "Software", 1600, 749000000, "US", "CA", "San Francisco", 333000000, 2012, "figma"),
    ("notion.so", "Notion Labs", "Software", 800, None, "US", "CA", "San Francisco", 343000000, 2013, "notion"),
    ("flexport.com", "Flexport", "Logistics", 2500, None, "US", "CA", "San Francisco", 2700000000, 2013, ""),
    ("nvidia.com", "NVIDIA", "Semiconductors", 29600, 60900000000, "US", "CA", "Santa Clara", None, 1993, ""),
    ("netflix.com", "Netflix", "Media", 13000, 33700000000, "US", "CA", "Los Gatos", None, 1997, ""),
    ("wikimedia.org", "Wikimedia Foundation", "Nonprofit", 700, 180000000, "US", "CA", "San Francisco", 0, 2003, ""),
    ("khanacademy.org", "Khan Academy", "Education", 250, 90000000, "US", "CA", "Mountain View", 0, 2008, ""),
    ("coursera.org", "Coursera", "Education", 1260, 695000000, "US", "CA", "Mountain View", 458000000, 2012, ""),
    ("zillow.com", "Zillow Group", "Real Estate", 6800, 2220000000, "US", "WA", "Seattle", 87000000, 2006, ""),
    ("nike.com", "Nike", "Retail", 79400, 51400000000, "US", "OR", "Beaverton", None, 1964, ""),
    ("tesla.com", "Tesla", "Manufacturing", 125000, 97700000000, "US", "TX", "Austin", None, 2003, ""),
    ("att.com", "AT&T", "Telecommunications", 149900, 122300000000, "US", "TX", "Dallas", None, 1983, ""),
    ("exxonmobil.com", "ExxonMobil", "Energy", 61500, 344600000000, "US", "TX", "Spring", None, 1999, ""),
    ("austintexas.gov", "City of Austin", "Government", 14000, None, "US", "TX", "Austin", None, 1839, ""),
    ("verizon.com", "Verizon", "Telecommunications", 99600, 134800000000, "US", "NY", "New York", None, 1983, ""),
    ("nytimes.com", "The New York Times Company", "Media", 5900, 2590000000, "US", "NY", "New York", None, 1851, ""),
    ("etsy.com", "Etsy", "Retail", 2400, 2810000000, "US", "NY", "Brooklyn", 97000000, 2005, "etsy"),
    ("mckinsey.com", "McKinsey & Company", "Consulting", 45000, 16000000000, "US", "NY", "New York", 0, 1926, ""),
    ("pfizer.com", "Pfizer", "Biotechnology", 81000, 58500000000, "US", "NY", "New York", None, 1849, ""),
    ("modernatx.com", "Moderna", "Biotechnology", 5800, 6800000000, "US", "MA", "Cambridge", 2600000000, 2010, ""),
    ("bcg.com", "Boston Consulting Group", "Consulting", 32000, 12300000000, "US", "MA", "Boston", 0, 1963, ""),
    ("mit.edu", "Massachusetts Institute of Technology", "Education", 13000, None, "US", "MA", "Cambridge", None, 1861, ""),
    ("chewy.com", "Chewy", "Retail", 18000, 11100000000, "US", "FL", "Plantation", 451000000, 2011, ""),
    ("nexteraenergy.com", "NextEra Energy", "Energy", 16800, 28100000000, "US", "FL", "Juno Beach", None, 1925, ""),
    ("mailchimp.com", "Mailchimp", "Software", 1400, None, "US", "GA", "Atlanta", 0, 2001, "mailchimp"),
    ("calendly.com", "Calendly", "Software", 550, None, "US", "GA", "Atlanta", 350000000, 2013, ""),
    ("palantir.com", "Palantir Technologies", "Software", 3900, 2870000000, "US", "CO", "Denver", 3000000000, 2003, ""),
    ("deere.com", "Deere & Company", "Manufacturing", 75800, 51700000000, "US", "IL", "Moline", None, 1837, ""),
    ("boeing.com", "Boeing", "Manufacturing", 171000, 77800000000, "US", "VA", "Arlington", None, 1916, ""),
    ("redhat.com", "Red Hat", "Software", 19000, None, "US", "NC", "Raleigh", None, 1993, ""),
    ("duolingo.com", "Duolingo", "Education", 830, 531000000, "US", "PA", "Pittsburgh", 183000000, 2011, ""),
    ("epic.com", "Epic Systems", "Healthcare", 13000, 4900000000, "US", "WI", "Verona", 0, 1979, ""),
    ("mayoclinic.org", "Mayo Clinic", "Healthcare", 76000, 17900000000, "US", "MN", "Rochester", 0, 1864, ""),
    ("nasa.gov", "NASA", "Government", 18000, None, "US", "DC", "Washington", None, 1958, ""),
    # --- Canada ---
    ("shopify.com", "Shopify", "Software", 8100, 7060000000, "CA", "Ontario", "Ottawa", 122000000, 2006, "shopify"),
    ("wealthsimple.com", "Wealthsimple", "Financial Services", 1100, None, "CA", "Ontario", "Toronto", 900000000, 2014, ""),
    ("cohere.com", "Cohere", "Software", 400, None, "CA", "Ontario", "Toronto", 970000000, 2019, ""),
    ("rbc.com", "Royal Bank of Canada", "Financial Services", 98000, 43000000000, "CA", "Ontario", "Toronto", None, 1864, ""),
    # --- Australia ---
    ("atlassian.com", "Atlassian", "Software", 12000, 4360000000, "AU", "New South Wales", "Sydney", 210000000, 2002, "jira"),
    ("canva.com", "Canva", "Software", 4000, 2300000000, "AU", "New South Wales", "Sydney", 580000000, 2012, ""),
    ("realestate.com.au", "REA Group", "Real Estate", 2900, 1000000000, "AU", "Victoria", "Melbourne", None, 1995, ""),
    ("telstra.com.au", "Telstra", "Telecommunications", 31000, 15200000000, "AU", "Victoria", "Melbourne", None, 1975, ""),
    ("unimelb.edu.au", "The University of Melbourne", "Education", 10000, None, "AU", "Victoria", "Melbourne", None, 1853, ""),
    # --- Germany ---
    ("siemens.de", "Siemens AG", "Manufacturing", 200000, 84000000000, "DE", "Bavaria", "Munich", None, 1847, ""),
    ("sap.com", "SAP SE", "Software", 107000, 36000000000, "DE", "Baden-Württemberg", "Walldorf", None, 1972, "sap"),
    ("zalando.de", "Zalando", "Retail", 15300, 11000000000, "DE", "Berlin", "Berlin", None, 2008, ""),
    ("n26.com", "N26", "Financial Services", 1500, None, "DE", "Berlin", "Berlin", 1700000000, 2013, ""),
    ("celonis.com", "Celonis", "Software", 3000, None, "DE", "Bavaria", "Munich", 2400000000, 2011, ""),
    ("deliveryhero.com", "Delivery Hero", "Logistics", 48000, 11000000000, "DE", "Berlin", "Berlin", None, 2011, ""),
    # --- Netherlands ---
    ("adyen.com", "Adyen", "Financial Services", 4000, 1800000000, "NL", "North Holland", "Amsterdam", 266000000, 2006, "adyen"),
    ("asml.com", "ASML", "Semiconductors", 42000, 29800000000, "NL", "North Brabant", "Veldhoven", None, 1984, ""),
    ("philips.com", "Philips", "Healthcare", 69000, 19500000000, "NL", "North Holland", "Amsterdam", None, 1891, ""),
    # --- United Kingdom ---
    ("monzo.com", "Monzo", "Financial Services", 3000, None, "GB", "England", "London", 1400000000, 2015, ""),
    ("revolut.com", "Revolut", "Financial Services", 8000, 2200000000, "GB", "England", "London", 1700000000, 2015, ""),
    ("wise.com", "Wise", "Financial Services", 5500, 1300000000, "GB", "England", "London", 400000000, 2011, ""),
    ("deliveroo.co.uk", "Deliveroo", "Logistics", 3000, 2600000000, "GB", "England", "London", 1700000000, 2013, ""),
    ("bbc.co.uk", "BBC", "Media", 21000, 7000000000, "GB", "England", "London", None, 1922, ""),
    ("ox.ac.uk", "University of Oxford", "Education", 16000, 3600000000, "GB", "England", "Oxford", None, 1096, ""),
    ("arm.com", "Arm Holdings", "Semiconductors", 7000, 3230000000, "GB", "England", "Cambridge", None, 1990, ""),
    # --- France ---
    ("doctolib.fr", "Doctolib", "Healthcare", 2800, None, "FR", "Île-de-France", "Paris", 500000000, 2013, ""),
    ("blablacar.com", "BlaBlaCar", "Software", 700, None, "FR", "Île-de-France", "Paris", 400000000, 2006, ""),
    ("ovhcloud.com", "OVHcloud", "Software", 2900, 1000000000, "FR", "Hauts-de-France", "Roubaix", None, 1999, ""),
    ("3ds.com", "Dassault Systèmes", "Software", 23800, 6500000000, "FR", "Île-de-France", "Vélizy-Villacoublay", None, 1981, ""),
    ("mistral.ai", "Mistral AI", "Software", 150, None, "FR", "Île-de-France", "Paris", 1100000000, 2023, ""),
    ("airbus.com", "Airbus", "Manufacturing", 134000, 71000000000, "FR", "Occitanie", "Blagnac", None, 1970, ""),
    ("totalenergies.com", "TotalEnergies", "Energy", 101000, 218900000000, "FR", "Île-de-France", "Courbevoie", None, 1924, ""),
    # --- India ---
    ("razorpay.com", "Razorpay", "Financial Services", 3000, None, "IN", "Karnataka", "Bengaluru", 740000000, 2014, "razorpay"),
    ("flipkart.com", "Flipkart", "Retail", 22000, None, "IN", "Karnataka", "Bengaluru", None, 2007, ""),
    ("zomato.com", "Zomato", "Logistics", 4000, 1400000000, "IN", "Haryana", "Gurugram", None, 2008, ""),
    # --- Brazil ---
    ("nubank.com.br", "Nubank", "Financial Services", 8000, 8000000000, "BR", "São Paulo", "São Paulo", 4100000000, 2013, ""),
    ("totvs.com", "TOTVS", "Software", 9000, 900000000, "BR", "São Paulo", "São Paulo", None, 1983, ""),
    # --- Japan ---
    ("rakuten.co.jp", "Rakuten Group", "Retail", 30000, 13800000000, "JP", "Tokyo", "Tokyo", None, 1997, ""),
    ("freee.co.jp", "freee K.K.", "Software", 1500, 180000000, "JP", "Tokyo", "Tokyo", None, 2012, ""),
    # --- Sweden ---
    ("spotify.com", "Spotify", "Media", 7300, 14500000000, "SE", "Stockholm County", "Stockholm", 2100000000, 2006, ""),
    ("klarna.com", "Klarna", "Financial Services", 5000, 2300000000, "SE", "Stockholm County", "Stockholm", 4500000000, 2005, "klarna"),
    ("ericsson.com", "Ericsson", "Telecommunications", 99000, 24400000000, "SE", "Stockholm County", "Stockholm", None, 1876, ""),
    # --- Spain ---
    ("telefonica.com", "Telefónica", "Telecommunications", 104000, 44000000000, "ES", "Community of Madrid", "Madrid", None, 1924, ""),
    ("bbva.com", "BBVA", "Financial Services", 121000, 38000000000, "ES", "Community of Madrid", "Madrid", None, 1857, ""),
    ("inditex.com", "Inditex", "Retail", 161000, 38600000000, "ES", "Galicia", "Arteixo", None, 1963, ""),
    ("glovoapp.com", "Glovo", "Logistics", 3000, None, "ES", "Catalonia", "Barcelona", 1200000000, 2015, ""),
    ("typeform.com", "Typeform", "Software", 500, None, "ES", "Catalonia", "Barcelona", 187000000, 2012, "typeform"),
]

# Hand-written fictional companies that other files/tests refer to explicitly.
# domain, name, industry, employees, revenue, country, state, city, tech, funding, founded
FIXED_FICTIONAL = [
    ("acme.io", "Acme, Inc.", "Software", 240, 38000000, "US", "CA", "San Francisco",
     "salesforce;hubspot;aws;snowflake;segment;react", 42000000, 2014),
    ("acme-robotics.io", "Acme Robotics", "Manufacturing", 85, 14500000, "US", "MA", "Boston",
     "hubspot;aws;kubernetes;github", 18500000, 2017),
    ("harbourline.co.uk", "Harbourline Outfitters Ltd", "Retail", 64, 9800000, "GB", "England", "Bristol",
     "shopify;klaviyo;google-analytics;stripe", 0, 2009),
    ("northwind-traders.com", "Northwind Traders, LLC", "Retail", 130, 41000000, "US", "WA", "Tacoma",
     "netsuite;shopify;mailchimp", None, 1996),
    ("omalleyandsons.com", "O'Malley & Sons Logistics", "Logistics", 410, 96000000, "US", "IL", "Joliet",
     "microsoft-dynamics;salesforce;azure", 0, 1978),
    ("kestrel-data.io", "Kestrel Data", "Software", 38, 4200000, "US", "CO", "Boulder",
     "hubspot;gcp;bigquery;react;segment", 7500000, 2021),
    ("northmoor.gov.uk", "Northmoor District Council", "Government", 1150, None, "GB", "England", "Northmoor",
     "microsoft-365;azure;servicenow", None, 1974),
    ("bluefin-capital.com", "Bluefin Capital Partners, L.P.", "Financial Services", 22, 15000000, "US", "NY", "New York",
     "salesforce;docusign;azure", 0, 2011),
]

INDUSTRY_SUFFIX = {
    "Software": ["Labs", "Analytics", "Software", "Cloud", "Data", "Systems", "AI", "Stack", "Works", "Logic"],
    "Financial Services": ["Capital", "Payments", "Financial", "Lending", "Ledger", "Wealth", "Credit"],
    "Healthcare": ["Health", "Medical", "Clinics", "Care", "Diagnostics"],
    "Manufacturing": ["Industries", "Manufacturing", "Components", "Fabrication", "Machining", "Robotics"],
    "Retail": ["Outfitters", "Goods", "Market", "Supply", "Home", "Apparel"],
    "Education": ["Academy", "Learning", "Institute", "College"],
    "Media": ["Media", "Studios", "Press", "Pictures", "Audio"],
    "Logistics": ["Logistics", "Freight", "Shipping", "Haulage", "Fulfillment"],
    "Telecommunications": ["Telecom", "Networks", "Wireless", "Fiber"],
    "Consulting": ["Consulting", "Partners", "Advisory", "Group"],
    "Biotechnology": ["Bio", "Therapeutics", "Genomics", "Biosciences"],
    "Real Estate": ["Realty", "Properties", "Homes", "Estates"],
    "Energy": ["Energy", "Solar", "Power", "Renewables", "Grid"],
    "Nonprofit": ["Foundation", "Alliance", "Trust", "Fund"],
    "Government": ["County", "City"],
}

INDUSTRY_WEIGHTS = [
    ("Software", 30), ("Financial Services", 8), ("Healthcare", 7), ("Manufacturing", 8),
    ("Retail", 7), ("Education", 4), ("Media", 4), ("Logistics", 5), ("Telecommunications", 3),
    ("Consulting", 6), ("Biotechnology", 4), ("Real Estate", 4), ("Energy", 4), ("Nonprofit", 3),
    ("Government", 2),
]

FICT_PREFIXES = [
    "Amberlane", "Birchwood", "Brightwell", "Cinderpeak", "Cobaltia", "Copperleaf", "Dovetail",
    "Driftwood", "Duskwood", "Elmstead", "Emberly", "Everbright", "Fablehouse", "Fernhill",
    "Foxglove", "Gildwell", "Glasswing", "Graniteview", "Halcyon", "Harrowgate", "Hollowmere",
    "Inkwell", "Ironbark", "Jadeport", "Juniperline", "Kinsale", "Larkspur", "Lumenfield",
    "Marlowe", "Moonrise", "Nettlefield", "Oakhaven", "Orchardly", "Palisade", "Pinecrest",
    "Quillon", "Quarrystone", "Redwater", "Riverbend", "Saltmarsh", "Silverpine", "Stonebridge",
    "Thornbury", "Tidewater", "Umberfield", "Upland", "Vantor", "Verity", "Willowby", "Wrenfield",
    "Yarrowby", "Zephyrine", "Zinnia", "Ashcombe", "Bramblecote", "Calloway", "Dunmore",
    "Eastwold", "Fallowmere", "Greywick", "Heatherton", "Ivybridge", "Kettering", "Lochside",
    "Millbrook", "Northgate", "Otterburn", "Penhallow", "Quenby", "Rushmere", "Sandhaven",
    "Tanglewood", "Underhill", "Valewood", "Westmarch", "Yewcroft",
]

US_STATE_CITIES = {
    "CA": ["San Francisco", "San Jose", "Oakland", "Los Angeles", "San Diego", "Palo Alto", "Irvine", "Sacramento"],
    "WA": ["Seattle", "Bellevue", "Redmond", "Spokane", "Tacoma"],
    "OR": ["Portland", "Eugene", "Bend"],
    "NY": ["New York", "Brooklyn", "Rochester", "Buffalo"],
    "MA": ["Boston", "Cambridge", "Somerville", "Worcester"],
    "TX": ["Austin", "Dallas", "Houston", "San Antonio", "Plano"],
    "IL": ["Chicago", "Evanston", "Naperville"],
    "CO": ["Denver", "Boulder", "Colorado Springs"],
    "GA": ["Atlanta", "Alpharetta", "Savannah"],
    "FL": ["Miami", "Tampa", "Orlando", "Jacksonville"],
    "NC": ["Raleigh", "Durham", "Charlotte"],
    "PA": ["Pittsburgh", "Philadelphia"],
    "UT": ["Salt Lake City", "Lehi", "Provo"],
    "MN": ["Minneapolis", "Saint Paul"],
    "AZ": ["Phoenix", "Scottsdale", "Tempe"],
    "VA": ["Arlington", "Reston", "Richmond"],
    "OH": ["Columbus", "Cleveland", "Cincinnati"],
    "MI": ["Detroit", "Ann Arbor", "Grand Rapids"],
    "NJ": ["Newark", "Princeton", "Jersey City"],
    "TN": ["Nashville", "Memphis"],
}
US_STATE_WEIGHTS = [("CA", 10), ("NY", 8), ("WA", 7), ("MA", 6), ("TX", 9), ("IL", 6), ("CO", 5),
                    ("GA", 5), ("FL", 5), ("OR", 5), ("NC", 3), ("PA", 3), ("UT", 3), ("MN", 2),
                    ("AZ", 2), ("VA", 3), ("OH", 2), ("MI", 2), ("NJ", 2), ("TN", 2)]

REGION_CITIES = {
    "GB": [("England", "London"), ("England", "Manchester"), ("England", "Bristol"), ("England", "Leeds"),
           ("Scotland", "Edinburgh"), ("Scotland", "Glasgow"), ("Wales", "Cardiff"), ("England", "Cambridge")],
    "DE": [("Berlin", "Berlin"), ("Bavaria", "Munich"), ("Hamburg", "Hamburg"),
           ("North Rhine-Westphalia", "Cologne"), ("Hesse", "Frankfurt"),
           ("Baden-Württemberg", "Stuttgart"), ("Saxony", "Leipzig")],
    "FR": [("Île-de-France", "Paris"), ("Auvergne-Rhône-Alpes", "Lyon"), ("Occitanie", "Toulouse"),
           ("Nouvelle-Aquitaine", "Bordeaux"), ("Hauts-de-France", "Lille"),
           ("Provence-Alpes-Côte d'Azur", "Marseille")],
    "CA": [("Ontario", "Toronto"), ("Ontario", "Ottawa"), ("Quebec", "Montreal"),
           ("British Columbia", "Vancouver"), ("Alberta", "Calgary"), ("Ontario", "Waterloo")],
    "AU": [("New South Wales", "Sydney"), ("Victoria", "Melbourne"), ("Queensland", "Brisbane"),
           ("Western Australia", "Perth"), ("South Australia", "Adelaide")],
    "NL": [("North Holland", "Amsterdam"), ("South Holland", "Rotterdam"), ("Utrecht", "Utrecht"),
           ("North Brabant", "Eindhoven"), ("South Holland", "The Hague")],
    "IN": [("Karnataka", "Bengaluru"), ("Maharashtra", "Mumbai"), ("Maharashtra", "Pune"),
           ("Telangana", "Hyderabad"), ("Tamil Nadu", "Chennai"), ("Delhi", "New Delhi")],
    "BR": [("São Paulo", "São Paulo"), ("Rio de Janeiro", "Rio de Janeiro"),
           ("Minas Gerais", "Belo Horizonte"), ("Santa Catarina", "Florianópolis"), ("Paraná", "Curitiba")],
    "JP": [("Tokyo", "Tokyo"), ("Osaka", "Osaka"), ("Kanagawa", "Yokohama"), ("Fukuoka", "Fukuoka"),
           ("Aichi", "Nagoya")],
    "SE": [("Stockholm County", "Stockholm"), ("Västra Götaland", "Gothenburg"), ("Skåne", "Malmö"),
           ("Uppsala County", "Uppsala")],
    "ES": [("Community of Madrid", "Madrid"), ("Catalonia", "Barcelona"),
           ("Valencian Community", "Valencia"), ("Andalusia", "Seville"), ("Basque Country", "Bilbao")],
}
NON_US_COUNTRY_WEIGHTS = [("GB", 16), ("DE", 13), ("FR", 9), ("CA", 10), ("AU", 8), ("NL", 7),
                          ("IN", 7), ("BR", 5), ("JP", 4), ("SE", 5), ("ES", 5)]

COUNTRY_TLDS = {
    "US": [".com", ".com", ".com", ".io", ".ai", ".co", ".dev"],
    "US-classic": [".com", ".com", ".com", ".com", ".net", ".co"],
    "GB": [".co.uk", ".co.uk", ".com", ".io"],
    "DE": [".de", ".de", ".com", ".io"],
    "FR": [".fr", ".fr", ".com"],
    "CA": [".ca", ".com", ".io"],
    "AU": [".com.au", ".com.au", ".io"],
    "NL": [".nl", ".nl", ".com"],
    "IN": [".in", ".co.in", ".com"],
    "BR": [".com.br", ".com.br", ".com"],
    "JP": [".co.jp", ".jp", ".com"],
    "SE": [".se", ".se", ".com"],
    "ES": [".es", ".es", ".com"],
}
TECHY_INDUSTRIES = ("Software", "Biotechnology", "Financial Services")
LEGAL_SUFFIX = {
    "US": [", Inc.", " Inc.", " LLC", ", LLC"], "GB": [" Ltd", " Limited", " plc"],
    "DE": [" GmbH", " AG"], "FR": [" SAS", " SA"], "CA": [" Inc.", " Ltd."],
    "AU": [" Pty Ltd"], "NL": [" B.V."], "IN": [" Pvt. Ltd."], "BR": [" Ltda."],
    "JP": [" K.K."], "SE": [" AB"], "ES": [" S.L."],
}

TECH_COMMON = ["aws", "gcp", "azure", "google-analytics", "slack", "okta", "microsoft-365",
               "google-workspace", "zoom", "docusign", "cloudflare"]
TECH_BY_INDUSTRY = {
    "Software": ["salesforce", "hubspot", "segment", "snowflake", "react", "kubernetes", "terraform",
                 "datadog", "github", "jira", "stripe", "intercom", "mixpanel", "amplitude", "gong",
                 "outreach", "zendesk", "looker", "postgresql", "sentry"],
    "Financial Services": ["salesforce", "snowflake", "oracle", "servicenow", "tableau", "kubernetes",
                           "plaid", "stripe", "marketo", "workday"],
    "Healthcare": ["epic", "salesforce", "servicenow", "workday", "tableau", "azure", "oracle"],
    "Manufacturing": ["sap", "oracle", "microsoft-dynamics", "salesforce", "netsuite", "tableau", "azure"],
    "Retail": ["shopify", "magento", "bigcommerce", "klaviyo", "stripe", "segment", "braze", "netsuite",
               "zendesk", "adyen"],
    "Education": ["canvas-lms", "salesforce", "hubspot", "google-workspace", "zoom", "workday"],
    "Media": ["wordpress", "braze", "segment", "fastly", "mixpanel", "hubspot", "react"],
    "Logistics": ["sap", "oracle", "salesforce", "microsoft-dynamics", "twilio", "snowflake", "kubernetes"],
    "Telecommunications": ["servicenow", "salesforce", "oracle", "kubernetes", "splunk", "twilio"],
    "Consulting": ["salesforce", "hubspot", "microsoft-dynamics", "tableau", "docusign", "netsuite"],
    "Biotechnology": ["veeva", "salesforce", "benchling", "aws", "snowflake", "tableau"],
    "Real Estate": ["salesforce", "hubspot", "yardi", "docusign", "mailchimp"],
    "Energy": ["sap", "oracle", "servicenow", "azure", "tableau", "salesforce"],
    "Nonprofit": ["salesforce", "mailchimp", "wordpress", "google-workspace", "stripe"],
    "Government": ["servicenow", "microsoft-365", "azure", "oracle", "salesforce"],
    "Semiconductors": ["sap", "oracle", "salesforce", "servicenow", "azure", "kubernetes"],
}
REV_PER_EMP = {  # USD per employee (low, high)
    "Software": (150e3, 320e3), "Financial Services": (250e3, 600e3), "Healthcare": (90e3, 220e3),
    "Manufacturing": (150e3, 350e3), "Retail": (150e3, 450e3), "Education": (50e3, 120e3),
    "Media": (140e3, 320e3), "Logistics": (150e3, 420e3), "Telecommunications": (300e3, 550e3),
    "Consulting": (120e3, 260e3), "Biotechnology": (60e3, 500e3), "Real Estate": (200e3, 600e3),
    "Energy": (500e3, 1500e3), "Nonprofit": (50e3, 150e3), "Government": (0, 0),
}

# ---------------------------------------------------------------------------
# People
# ---------------------------------------------------------------------------
FIRST_NAMES = [
    "Ada", "Grace", "Liam", "Olivia", "Noah", "Emma", "Mateo", "Sofia", "Priya", "Arjun", "Wei",
    "Mei", "Hiroshi", "Yuki", "Lars", "Ingrid", "Sven", "Chloé", "Lucas", "Léa", "Hannah", "Jonas",
    "Fatima", "Omar", "Amara", "Kwame", "Diego", "Camila", "João", "Beatriz", "Aarav", "Ananya",
    "Ethan", "Ava", "Mason", "Isabella", "Mia", "Oliver", "Charlotte", "Jack", "Amelia", "Thomas",
    "Sophie", "Maximilian", "Lena", "Finn", "Marie", "Noor", "Rahul", "Sanjay", "Kenji", "Aiko",
    "Erik", "Astrid", "Pablo", "Lucía", "Carmen", "Javier", "Siobhan", "Declan", "Niamh", "Tariq",
    "Zainab", "Chen", "Lin", "Min-jun", "Seo-yeon", "Tomás", "Zoë", "Björn", "Renée", "Daniel",
    "Rachel", "Marcus", "Nadia", "Victor", "Elena", "Samuel", "Leah", "Caleb", "Naomi", "Gabriel",
    "Hazel", "Owen", "Ruby", "Felix", "Iris", "Theo", "Clara", "Adrian", "Maya", "Julian", "Nora",
]
LAST_NAMES = [
    "Okafor", "Lindqvist", "Nakamura", "Ferreira", "Brennan", "Kowalski", "Schneider", "Dubois",
    "Moreau", "Rossi", "García", "Martínez", "Patel", "Sharma", "Iyer", "Chen", "Wang", "Kim",
    "Park", "Tanaka", "Suzuki", "Johansson", "Andersson", "Nielsen", "O'Brien", "Murphy", "Walsh",
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Rodriguez", "Wilson",
    "Anderson", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris",
    "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill",
    "Green", "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Perez", "Roberts", "Turner",
    "Phillips", "Campbell", "Parker", "Evans", "Edwards", "Collins", "Stewart", "Morris", "Cook",
    "Rogers", "Müller", "Fischer", "Weber", "Becker", "Hoffmann", "van der Berg", "de Vries",
    "Jansen", "Bakker", "Silva", "Santos", "Oliveira", "Souza", "Costa", "Mensah", "Adeyemi",
    "Haddad", "Khan", "Ahmed", "Novak", "Horvat", "Nowak", "Larsen", "Fitzgerald", "Delgado",
    "Nguyen", "Tran", "Reyes", "Castillo", "Haas", "Keller", "Lambert", "Girard", "Bianchi",
]

TITLES = {
    # category -> list of titles
    "clevel": ["CEO", "CFO", "CTO", "COO", "CMO", "Chief Revenue Officer", "Founder & CEO",
               "Co-founder", "President", "Chief Information Officer"],
    "vp": ["VP Engineering", "VP of Sales", "VP Marketing", "SVP Revenue Operations",
           "VP Customer Success", "Vice President, Finance"],
    "head": ["Head of Marketing", "Head of Growth", "Head of Data", "Head of Sales Operations",
             "Head of IT", "Head of Demand Generation"],
    "director": ["Director of Sales Operations", "IT Director", "Director of Demand Generation",
                 "Marketing Director", "Director of Engineering", "Director of Procurement",
                 "Sales Director, EMEA"],
    "manager": ["RevOps Manager", "Marketing Operations Manager", "Sales Manager", "Product Manager",
                "Engineering Manager", "IT Manager", "Growth Marketing Manager", "Procurement Manager"],
    "ic": ["Software Engineer", "Senior Software Engineer", "Data Scientist", "Marketing Coordinator",
           "Procurement Specialist", "Sales Development Representative", "Account Executive",
           "Business Analyst", "Data Analyst", "Systems Administrator", "Operations Analyst",
           "Solutions Architect", "DevOps Engineer", "Content Marketing Specialist"],
    "junior": ["Student", "Intern", "Marketing Intern", "PhD Student", "Graduate Student",
               "Engineering Intern"],
    "other": ["Freelancer", "Consultant", "Owner", "Independent Consultant", "Advisor"],
}
TITLE_WEIGHTS_BUSINESS = [("clevel", 8), ("vp", 8), ("head", 7), ("director", 12), ("manager", 22),
                          ("ic", 34), ("junior", 5), ("other", 4)]
TITLE_WEIGHTS_FREE = [("clevel", 6), ("vp", 2), ("head", 2), ("director", 3), ("manager", 10),
                      ("ic", 22), ("junior", 25), ("other", 30)]
SENIOR_RE = re.compile(r"\b(ceo|cfo|cto|coo|cmo|cio|chief|founder|co-founder|president|vp|svp|head|director)\b", re.I)
JUNIOR_RE = re.compile(r"\b(student|intern)\b", re.I)

SOURCES = [("webform", 30), ("webinar", 12), ("content_download", 16), ("trade_show", 7),
           ("referral", 6), ("paid_search", 14), ("api", 8), ("chat", 7)]
UTM_CAMPAIGNS = ["q4-demo-push", "brand-search", "webinar-nov-2026", "retargeting-pricing",
                 "roi-guide-2026", "linkedin-abm-enterprise", "g2-comparison", "partner-referral",
                 "saastr-2026", "newsletter-oct", "competitor-keywords", "trial-nurture"]
BUDGETS = ["<10k", "10k-50k", "50k+"]
TIMELINES = ["now", "this quarter", "next year"]
EMPLOYEE_HINTS = ["1-10", "11-50", "51-200", "201-1000", "1001-5000", "5000+"]

FREE_FOR_LEADS = [("gmail.com", 9), ("yahoo.com", 2), ("outlook.com", 2), ("hotmail.com", 2),
                  ("icloud.com", 2), ("aol.com", 1), ("protonmail.com", 1), ("gmx.de", 1),
                  ("yandex.ru", 1), ("mail.com", 1)]
DISPOSABLE_FOR_LEADS = ["mailinator.com", "guerrillamailblock.com", "10minutemail.com",
                        "yopmail.com", "trashmail.com", "sharklasers.com", "mailinator.com"]

# Business domains deliberately NOT present in firmographics.csv (all fictional).
UNKNOWN_BUSINESS = [
    ("quillfeather.io", "Quillfeather", "US", "Software"),
    ("brassmoor-analytics.com", "Brassmoor Analytics", "US", "Software"),
    ("tallowmere-dental.com", "Tallowmere Dental Group", "US", "Healthcare"),
    ("saffronquay.co.uk", "Saffron Quay Ltd", "GB", "Retail"),
    ("greyfriars-accounting.co.uk", "Greyfriars Accounting", "GB", "Consulting"),
    ("lindqvist-bygg.se", "Lindqvist Bygg AB", "SE", "Real Estate"),
    ("hoffmann-logistik.de", "Hoffmann Logistik GmbH", "DE", "Logistics"),
    ("plumtree-analytics.com", "Plumtree Analytics", "US", "Software"),
    ("cedarlane-hvac.com", "Cedarlane HVAC", "US", "Manufacturing"),
    ("bluemesa-ortho.com", "Blue Mesa Orthopedics", "US", "Healthcare"),
    ("vintrail.io", "Vintrail", "US", "Software"),
    ("corvid-security.com", "Corvid Security", "US", "Software"),
    ("maplecrest-insurance.ca", "Maplecrest Insurance", "CA", "Financial Services"),
    ("kookaburra-labs.com.au", "Kookaburra Labs", "AU", "Software"),
    ("atelier-lumiere.fr", "Atelier Lumière", "FR", "Media"),
    ("tulpenveld.nl", "Tulpenveld B.V.", "NL", "Retail"),
    ("sarvam-fintech.in", "Sarvam Fintech", "IN", "Financial Services"),
    ("oakridge-charter.org", "Oakridge Charter School", "US", "Education"),
    ("pendleford.com", "Pendleford Manufacturing", "US", "Manufacturing"),
    ("riverstone-cpa.com", "Riverstone CPA", "US", "Consulting"),
]

PHONE_FORMATS = {
    "US": lambda r: r.choice(["+1415555{:04d}", "+1 (212) 555-{:04d}", "+1-617-555-{:04d}", "+1512555{:04d}",
                              "+1 206 555 {:04d}"]).format(r.randint(100, 199)),
    "CA": lambda r: "+1 416 555 {:04d}".format(r.randint(100, 199)),
    "GB": lambda r: r.choice(["+44 20 7946 {:04d}", "+44207946{:04d}"]).format(r.randint(0, 999)),
    "DE": lambda r: "+49 30 {:08d}".format(r.randint(10000000, 99999999)),
    "FR": lambda r: "+33 1 99 00 {:02d} {:02d}".format(r.randint(0, 99), r.randint(0, 99)),
    "AU": lambda r: "+61 2 5550 {:04d}".format(r.randint(0, 9999)),
    "NL": lambda r: "+31 20 {:07d}".format(r.randint(1000000, 9999999)),
    "IN": lambda r: "+91 80 {:08d}".format(r.randint(10000000, 99999999)),
    "BR": lambda r: "+55 11 9{:04d}-{:04d}".format(r.randint(0, 9999), r.randint(0, 9999)),
    "JP": lambda r: "+81 3 {:04d} {:04d}".format(r.randint(1000, 9999), r.randint(0, 9999)),
    "SE": lambda r: "+46 8 {:03d} {:03d} {:02d}".format(r.randint(100, 999), r.randint(0, 999), r.randint(0, 99)),
    "ES": lambda r: "+34 91 {:03d} {:02d} {:02d}".format(r.randint(100, 999), r.randint(0, 99), r.randint(0, 99)),
}


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def wchoice(rng, pairs):
    items = [p[0] for p in pairs]
    weights = [p[1] for p in pairs]
    return rng.choices(items, weights=weights, k=1)[0]


def ascii_slug(s, sep=""):
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    s = s.lower().replace("'", "").replace("&", "and")
    s = re.sub(r"[^a-z0-9]+", sep, s)
    return s.strip(sep)


def csv_line(fields):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(fields)
    return buf.getvalue()


def fmt_int(v):
    return "" if v is None else str(int(v))


def employees_hint_for(n):
    if n is None:
        return ""
    if n <= 10:
        return "1-10"
    if n <= 50:
        return "11-50"
    if n <= 200:
        return "51-200"
    if n <= 1000:
        return "201-1000"
    if n <= 5000:
        return "1001-5000"
    return "5000+"


def registrable_from_website(w):
    """Reference normalisation used only by the verifier."""
    w = w.strip().lower()
    w = re.sub(r"^[a-z][a-z0-9+.-]*://", "", w)
    w = w.split("/")[0].split("?")[0].split("#")[0].split(":")[0]
    if w.startswith("www."):
        w = w[4:]
    return w


MULTI_SUFFIXES = ("co.uk", "org.uk", "ac.uk", "gov.uk", "com.au", "edu.au", "co.jp", "co.in",
                  "com.br", "co.nz")


def registrable(host):
    labels = host.split(".")
    for suf in MULTI_SUFFIXES:
        if host.endswith("." + suf):
            return ".".join(labels[-3:])
    return ".".join(labels[-2:])


# ---------------------------------------------------------------------------
# 1. firmographics
# ---------------------------------------------------------------------------
def build_firmographics():
    rng = random.Random(SEED + 1)
    rows = []
    used = set()

    for (dom, name, ind, emp, rev, cc, st, city, fund, founded, own) in REAL_COMPANIES:
        pool = TECH_BY_INDUSTRY.get(ind, [])
        k = rng.randint(2, 5)
        tech = rng.sample(pool, min(k, len(pool))) + rng.sample(TECH_COMMON, rng.randint(1, 2))
        if own:
            tech = [own] + [t for t in tech if t != own]
        tech = list(dict.fromkeys(tech))
        rows.append(dict(domain=dom, name=name, industry=ind, employees=emp, revenue=rev, country=cc,
                         state=st, city=city, tech=";".join(tech), funding_total=fund,
                         founded_year=founded))
        used.add(dom)

    for (dom, name, ind, emp, rev, cc, st, city, tech, fund, founded) in FIXED_FICTIONAL:
        rows.append(dict(domain=dom, name=name, industry=ind, employees=emp, revenue=rev, country=cc,
                         state=st, city=city, tech=tech, funding_total=fund, founded_year=founded))
        used.add(dom)

    total_target = 180
    n_fict = total_target - len(rows)
    us_now = sum(1 for r in rows if r["country"] == "US")
    us_target = round(0.55 * total_target)
    n_us = max(0, us_target - us_now)
    countries = ["US"] * n_us + [wchoice(rng, NON_US_COUNTRY_WEIGHTS) for _ in range(n_fict - n_us)]
    rng.shuffle(countries)

    prefixes = FICT_PREFIXES[:]
    rng.shuffle(prefixes)
    pi = 0
    for cc in countries:
        ind = wchoice(rng, INDUSTRY_WEIGHTS)
        if ind == "Government" and cc != "US":
            ind = "Consulting"
        while True:
            prefix = prefixes[pi % len(prefixes)]
            pi += 1
            suffix = rng.choice(INDUSTRY_SUFFIX[ind])
            if ind == "Government":
                kind = suffix
                name = f"{prefix} County" if kind == "County" else f"City of {prefix}"
                dom = f"{ascii_slug(prefix)}{'county' if kind == 'County' else 'city'}.gov"
            else:
                base = f"{prefix} {suffix}"
                style = rng.random()
                if ind == "Nonprofit":
                    dom = f"{ascii_slug(prefix)}{ascii_slug(suffix)}.org"
                elif ind == "Education" and cc == "US" and suffix in ("College", "Institute"):
                    dom = f"{ascii_slug(prefix)}.edu"
                else:
                    tlds = COUNTRY_TLDS[cc]
                    if ind not in TECHY_INDUSTRIES:
                        tlds = COUNTRY_TLDS["US-classic"] if cc == "US" else [t for t in tlds if t not in (".io", ".ai", ".dev")]
                    tld = rng.choice(tlds)
                    if style < 0.40:
                        dom = f"{ascii_slug(prefix)}-{ascii_slug(suffix)}{tld}"
                    elif style < 0.75:
                        dom = f"{ascii_slug(prefix)}{ascii_slug(suffix)}{tld}"
                    else:
                        dom = f"{ascii_slug(prefix)}{tld}"
                name = base
                if rng.random() < 0.22:
                    name = base + rng.choice(LEGAL_SUFFIX[cc])
            if dom not in used:
                used.add(dom)
                break

        # employees: log-normal, many in 10..1000
        if ind == "Government":
            emp = int(rng.lognormvariate(math.log(900), 0.9))
        else:
            emp = int(rng.lognormvariate(math.log(110), 1.45))
        emp = max(3, min(emp, 60000))
        lo, hi = REV_PER_EMP[ind]
        rev = None if hi == 0 else int(round(emp * rng.uniform(lo, hi), -4))
        if ind == "Biotechnology" and rng.random() < 0.3:
            rev = 0 if emp < 150 else rev
        if cc == "US":
            st = wchoice(rng, US_STATE_WEIGHTS)
            city = rng.choice(US_STATE_CITIES[st])
        else:
            st, city = rng.choice(REGION_CITIES[cc])
            if rng.random() < 0.25:
                st = ""
        if ind in TECHY_INDUSTRIES and rng.random() < 0.7:
            founded = rng.randint(2004, 2024)
        elif ind == "Government":
            founded = rng.randint(1850, 1965)
        elif ind in TECHY_INDUSTRIES:
            founded = rng.randint(1985, 2012)
        else:
            founded = rng.randint(1952, 2022)
        if ind in ("Software", "Biotechnology") and founded >= 2008 and rng.random() < 0.8:
            fund = int(round(rng.lognormvariate(math.log(max(emp, 5) * 180000), 0.8), -5))
        elif ind in ("Government", "Nonprofit", "Education"):
            fund = 0 if rng.random() < 0.5 else None
        else:
            fund = rng.choice([0, 0, None, int(round(rng.lognormvariate(math.log(8e6), 1.0), -5))])
        pool = TECH_BY_INDUSTRY[ind]
        tech = rng.sample(pool, min(len(pool), rng.randint(2, 5))) + rng.sample(TECH_COMMON, rng.randint(0, 2))
        tech = ";".join(dict.fromkeys(tech))

        # realistic holes
        if rng.random() < 0.05:
            emp = None
        if rng.random() < 0.12:
            rev = None
        if rng.random() < 0.08:
            tech = ""
        if rng.random() < 0.20:
            fund = None
        if rng.random() < 0.07:
            founded = None
        if rng.random() < 0.04:
            city = ""
        if rng.random() < 0.03:
            ind = ""
        rows.append(dict(domain=dom, name=name, industry=ind, employees=emp, revenue=rev, country=cc,
                         state=st, city=city, tech=tech, funding_total=fund, founded_year=founded))

    # a few holes in real rows too (deterministic choices)
    for r in rng.sample(rows[:len(REAL_COMPANIES)], 6):
        r["tech"] = ""
    for r in rng.sample(rows[:len(REAL_COMPANIES)], 4):
        r["city"] = ""

    rng.shuffle(rows)
    return rows


def write_firmographics(rows):
    path = os.path.join(CONFIG_DIR, "firmographics.csv")
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["domain", "name", "industry", "employees", "revenue", "country", "state", "city",
                    "tech", "funding_total", "founded_year"])
        for r in rows:
            w.writerow([r["domain"], r["name"], r["industry"], fmt_int(r["employees"]), fmt_int(r["revenue"]),
                        r["country"], r["state"], r["city"], r["tech"], fmt_int(r["funding_total"]),
                        fmt_int(r["founded_year"])])


# ---------------------------------------------------------------------------
# people / leads helpers
# ---------------------------------------------------------------------------
def pick_person(rng):
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def local_part(rng, first, last, pattern):
    f = ascii_slug(first)
    l = ascii_slug(last)
    if pattern == "first.last":
        return f"{f}.{l}"
    if pattern == "flast":
        return f"{f[0]}{l}"
    if pattern == "first":
        return f
    if pattern == "first_last":
        return f"{f}_{l}"
    if pattern == "firstl":
        return f"{f}{l[0]}"
    raise ValueError(pattern)


def company_pattern(domain):
    r = random.Random(domain)  # stable per company
    return r.choices(["first.last", "flast", "first", "first_last", "firstl"], [55, 20, 10, 5, 10])[0]


def free_local(rng, first, last):
    f, l = ascii_slug(first), ascii_slug(last)
    return rng.choice([f"{f}.{l}", f"{f}{l}{rng.randint(1, 99)}", f"{f[0]}.{l}{rng.randint(70, 99)}",
                       f"{f}.{l}{rng.randint(1980, 2004)}", f"{l}.{f}"])


def website_variant(rng, dom):
    r = rng.random()
    if r < 0.22:
        return f"https://www.{dom}/"
    if r < 0.34:
        return f"https://www.{dom}/pricing"
    if r < 0.46:
        return dom
    if r < 0.58:
        return f"www.{dom}"
    if r < 0.68:
        return f"http://{dom}"
    if r < 0.78:
        return f"https://{dom}"
    if r < 0.90:
        sub = rng.choice(["shop", "blog", "app", "eu", "go", "careers"])
        path = rng.choice(["", "/", "/contact", "/en-us/products", "/?utm_source=linkedin"])
        return f"https://{sub}.{dom}{path}"
    if r < 0.95:
        return f"HTTPS://WWW.{dom.upper()}"
    return f"http://www.{dom}/about-us"


def messy_email(rng, email):
    local, dom = email.split("@")
    kind = rng.choice(["spaces", "caps", "capsdomain", "both", "trailing", "upperall"])
    if kind == "spaces":
        return f"  {email} "
    if kind == "caps":
        return ".".join(p.capitalize() for p in local.split(".")) + "@" + dom
    if kind == "capsdomain":
        return f"{local}@{dom.upper()}"
    if kind == "both":
        return "  " + ".".join(p.capitalize() for p in local.split(".")) + "@" + dom.upper() + " "
    if kind == "trailing":
        return email + "   "
    return email.upper()


def phone_for(rng, cc):
    fn = PHONE_FORMATS.get(cc)
    return fn(rng) if fn else ""


# ---------------------------------------------------------------------------
# 2. sample-leads.csv
# ---------------------------------------------------------------------------
LEAD_HEADER = ["email", "first_name", "last_name", "title", "company", "website", "phone", "country",
               "source", "external_id", "utm_campaign", "employees_hint", "budget", "timeline"]


def build_sample_leads(firmo):
    rng = random.Random(SEED + 2)
    firmo_by_dom = {r["domain"]: r for r in firmo}
    firmo_domains = sorted(firmo_by_dom)
    used_emails = set()
    ext_ids = iter(rng.sample(range(1000, 999999), 400))

    def ext_id():
        return "" if rng.random() < 0.08 else f"form-{next(ext_ids):06d}"

    def extras(emp=None):
        utm = rng.choice(UTM_CAMPAIGNS) if rng.random() < 0.40 else ""
        hint = ""
        if rng.random() < 0.25:
            hint = employees_hint_for(emp) if emp and rng.random() < 0.8 else rng.choice(EMPLOYEE_HINTS)
        budget = rng.choice(BUDGETS) if rng.random() < 0.30 else ""
        timeline = rng.choice(TIMELINES) if rng.random() < 0.30 else ""
        return utm, hint, budget, timeline

    def unique_email(make):
        for _ in range(50):
            e = make()
            if e.lower() not in used_emails:
                used_emails.add(e.lower())
                return e
        raise RuntimeError("could not make a unique email")

    rows = []  # dicts with "kind" + "fields"

    # --- business emails at firmographics domains (175) ---
    # first: a few explicit rows the docs/tests may refer to
    explicit = [
        ("acme.io", "Ada", "Okafor", "VP Engineering", "  Ada.Okafor@ACME.io ", "https://www.acme.io/pricing"),
        ("harbourline.co.uk", "Siobhan", "Walsh", "Head of Marketing", "siobhan.walsh@harbourline.co.uk",
         "http://shop.harbourline.co.uk"),
        ("acme.io", "Marcus", "Reyes", "RevOps Manager", "marcus.reyes@acme.io", "acme.io"),
        ("stripe.com", "Nadia", "Haddad", "Director of Sales Operations", "nadia.haddad@stripe.com", ""),
        ("siemens.de", "Jonas", "Becker", "Procurement Specialist", "jonas.becker@siemens.de", "https://www.siemens.de/"),
    ]
    for dom, fn, ln, title, email, web in explicit:
        used_emails.add(email.strip().lower())
        c = firmo_by_dom[dom]
        cc = c["country"]
        utm, hint, budget, timeline = extras(c["employees"])
        rows.append(dict(kind="firmo", fields=[email, fn, ln, title, c["name"], web, phone_for(rng, cc), cc,
                                               wchoice(rng, SOURCES), ext_id(), utm, hint, budget, timeline]))

    # weight smaller/fictional companies a bit higher, like a real inbound funnel
    weights = []
    for d in firmo_domains:
        e = firmo_by_dom[d]["employees"] or 100
        weights.append(1.6 if e < 2000 else 1.0)

    while len([r for r in rows if r["kind"] == "firmo"]) < 175:
        dom = rng.choices(firmo_domains, weights=weights, k=1)[0]
        c = firmo_by_dom[dom]
        fn, ln = pick_person(rng)
        pat = company_pattern(dom)
        lp = local_part(rng, fn, ln, pat)
        email = f"{lp}@{dom}"
        if email in used_emails:
            continue
        used_emails.add(email)
        if rng.random() < 0.015:
            email = f"{lp}+{rng.choice(['leads', 'webinar', 'demo'])}@{dom}"
        if rng.random() < 0.16:
            email = messy_email(rng, email)
        title = rng.choice(TITLES[wchoice(rng, TITLE_WEIGHTS_BUSINESS)])
        company = c["name"] if rng.random() < 0.9 else ""
        web = website_variant(rng, dom) if rng.random() < 0.45 else ""
        cc = c["country"] if rng.random() < 0.8 else ""
        phone = phone_for(rng, c["country"]) if rng.random() < 0.5 else ""
        utm, hint, budget, timeline = extras(c["employees"])
        rows.append(dict(kind="firmo", fields=[email, fn, ln, title, company, web, phone, cc,
                                               wchoice(rng, SOURCES), ext_id(), utm, hint, budget, timeline]))

    # --- business emails at unknown domains (19) ---
    for dom, cname, cc, _ind in UNKNOWN_BUSINESS[:19]:
        fn, ln = pick_person(rng)
        email = f"{local_part(rng, fn, ln, rng.choice(['first.last', 'flast', 'first']))}@{dom}"
        used_emails.add(email)
        if rng.random() < 0.12:
            email = messy_email(rng, email)
        title = rng.choice(TITLES[wchoice(rng, TITLE_WEIGHTS_BUSINESS)])
        web = website_variant(rng, dom) if rng.random() < 0.5 else ""
        utm, hint, budget, timeline = extras()
        rows.append(dict(kind="unknown", fields=[email, fn, ln, title, cname if rng.random() < 0.9 else "", web,
                                                 phone_for(rng, cc) if rng.random() < 0.4 else "",
                                                 cc if rng.random() < 0.8 else "", wchoice(rng, SOURCES),
                                                 ext_id(), utm, hint, budget, timeline]))

    # --- free-mail (24) ---
    free_country = {"gmx.de": "DE", "yandex.ru": ""}
    for i in range(24):
        fdom = wchoice(rng, FREE_FOR_LEADS)
        fn, ln = pick_person(rng)
        email = unique_email(lambda: f"{free_local(rng, fn, ln)}@{fdom}")
        if rng.random() < 0.15:
            email = messy_email(rng, email)
        title = rng.choice(TITLES[wchoice(rng, TITLE_WEIGHTS_FREE)]) if rng.random() < 0.85 else ""
        company, web, cc = "", "", free_country.get(fdom, rng.choice(["US", "US", "GB", "CA", "AU", "IN", ""]))
        r = rng.random()
        if r < 0.35:  # works at a known company, gave the website
            c = firmo_by_dom[rng.choice(firmo_domains)]
            company = c["name"]
            web = website_variant(rng, c["domain"])
            cc = c["country"] if rng.random() < 0.8 else cc
        elif r < 0.55:  # company name only
            company = firmo_by_dom[rng.choice(firmo_domains)]["name"]
        elif r < 0.62:  # small business with its own (unknown) site
            dom, cname, ucc, _ind = UNKNOWN_BUSINESS[19]
            company, web, cc = cname, website_variant(rng, dom), ucc
        utm, hint, budget, timeline = extras()
        rows.append(dict(kind="free", fields=[email, fn, ln, title, company, web,
                                              phone_for(rng, cc) if cc and rng.random() < 0.3 else "",
                                              cc, wchoice(rng, SOURCES), ext_id(), utm, hint, budget, timeline]))

    # --- disposable (7) ---
    junk_people = [("Test", "Test", "test123"), ("Asdf", "Qwerty", "asdf"), ("John", "Smith", "jsmith.trial"),
                   ("Mickey", "Mouse", "mickey"), ("A", "B", "ab1234"), ("Free", "Trial", "freetrial2026"),
                   ("Lena", "Park", "lena.park")]
    for (fn, ln, lp), ddom in zip(junk_people, DISPOSABLE_FOR_LEADS):
        email = f"{lp}@{ddom}"
        if email in used_emails:
            email = f"{lp}{rng.randint(2, 99)}@{ddom}"
        used_emails.add(email)
        rows.append(dict(kind="disposable", fields=[email, fn, ln, rng.choice(["", "", "CEO", "Student", "Manager"]),
                                                    rng.choice(["", "", "asdf", "Test Company", "none"]), "", "",
                                                    rng.choice(["", "US"]),
                                                    rng.choice(["webform", "content_download", "chat"]),
                                                    ext_id(), "", "", "", ""]))

    # --- domain-only (4): no email, but a website ---
    dom_only = [
        ("datadog.com", "https://www.datadog.com/pricing", "", "", ""),
        ("kestrel-data.io", "kestrel-data.io", "Priya", "Iyer", "Head of Data"),
        ("zalando.de", "http://www.zalando.de", "", "", ""),
        ("acme-robotics.io", "https://app.acme-robotics.io/signup", "Declan", "Murphy", "CTO"),
    ]
    for dom, web, fn, ln, title in dom_only:
        c = firmo_by_dom[dom]
        rows.append(dict(kind="domain_only", fields=["", fn, ln, title, c["name"], web, "", c["country"],
                                                     rng.choice(["api", "chat", "trade_show"]), ext_id(),
                                                     "", "", "", ""]))

    rng.shuffle(rows)

    # --- duplicates (3): same person, different case/spacing + different source ---
    firmo_rows = [r for r in rows if r["kind"] == "firmo" and r["fields"][0] == r["fields"][0].strip()
                  and r["fields"][0] == r["fields"][0].lower() and "+" not in r["fields"][0]]
    dup_src = [firmo_rows[3], firmo_rows[40], firmo_rows[90]]
    dup_variants = []
    for i, orig in enumerate(dup_src):
        f = list(orig["fields"])
        e = f[0]
        local, dom = e.split("@")
        if i == 0:
            f[0] = " " + ".".join(p.capitalize() for p in local.split(".")) + "@" + dom + "  "
        elif i == 1:
            f[0] = e.upper()
        else:
            f[0] = local + "@" + dom.upper() + " "
        srcs = [s for s, _ in SOURCES if s != f[8]]
        f[8] = rng.choice(srcs)
        f[9] = f"form-{next(ext_ids):06d}"
        f[10] = rng.choice(UTM_CAMPAIGNS)
        if not f[11] and rng.random() < 0.5:
            f[13] = rng.choice(TIMELINES)
        dup_variants.append(dict(kind="duplicate", fields=f, of=orig))
    # put each duplicate ~100 rows after its original (wrapping before the end)
    for d in dup_variants:
        idx = next(i for i, r in enumerate(rows) if r is d["of"])
        pos = min(idx + 95 + rng.randint(0, 20), len(rows) - 5)
        if pos <= idx:
            pos = idx + 1
        rows.insert(pos, d)

    # --- malformed rows (8), spread through the file ---
    mal = build_malformed(rng, ext_ids)
    # data-row indexes (0-based within data) where malformed rows are inserted
    positions = [16, 43, 70, 97, 125, 152, 180, 206]
    for pos, m in zip(positions, mal):
        rows.insert(pos, m)
    return rows


def build_malformed(rng, ext_ids):
    def eid():
        return f"form-{next(ext_ids):06d}"
    m = []
    # 1. too few columns (truncated export)
    m.append(dict(kind="malformed", reason="too few columns (9 instead of 14)",
                  raw="tomas.novak@kestrel-data.io,Tomás,Novak,Data Scientist,Kestrel Data,,,US,webform\n"))
    # 2. too many columns (unquoted comma inside the company name)
    fields = ["hannah.weber@omalleyandsons.com", "Hannah", "Weber", "IT Director", "O'Malley & Sons Logistics",
              "omalleyandsons.com", "", "US", "trade_show", eid(), "", "201-1000", "10k-50k", "this quarter"]
    raw = ",".join(fields[:4]) + ",O'Malley & Sons, Logistics," + ",".join(fields[5:]) + "\n"
    m.append(dict(kind="malformed", reason="too many columns (15 instead of 14: unquoted comma in company)", raw=raw))
    # 3. email without @
    m.append(dict(kind="malformed", reason='email has no "@" ("john.doe.acme.io")',
                  fields=["john.doe.acme.io", "John", "Doe", "Software Engineer", "Acme, Inc.", "", "", "US",
                          "webform", eid(), "", "", "", ""]))
    # 4. email with two @
    m.append(dict(kind="malformed", reason='email has two "@" ("maria@santos@acme-robotics.io")',
                  fields=["maria@santos@acme-robotics.io", "Maria", "Santos", "Marketing Coordinator",
                          "Acme Robotics", "", "", "US", "content_download", eid(), "roi-guide-2026", "", "", ""]))
    # 5. neither email nor website (names only)
    m.append(dict(kind="malformed", reason="neither email nor website (names only)",
                  fields=["", "Kenji", "Tanaka", "", "", "", "", "", "trade_show", eid(), "", "", "", ""]))
    # 6. space inside the address
    m.append(dict(kind="malformed", reason='email contains a space inside the address ("jane doe@acme.io")',
                  fields=["jane doe@acme.io", "Jane", "Doe", "CFO", "Acme, Inc.", "", "", "US",
                          "webinar", eid(), "webinar-nov-2026", "", "50k+", "now"]))
    # 7. domain without a dot
    m.append(dict(kind="malformed", reason='email domain has no dot ("bob@localhost")',
                  fields=["bob@localhost", "Bob", "Fitzgerald", "Systems Administrator", "", "", "", "",
                          "api", eid(), "", "", "", ""]))
    # 8. website that is not a domain, no email
    m.append(dict(kind="malformed", reason='no email and website is not a domain ("not a website")',
                  fields=["", "Clara", "Girard", "Head of Growth", "Girard Conseil", "not a website", "",
                          "FR", "chat", eid(), "", "", "", ""]))
    return m


def write_sample_leads(rows):
    path = os.path.join(CONFIG_DIR, "sample-leads.csv")
    malformed = []
    dup_lines = []
    kinds = {}
    line_of = {}
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(csv_line(LEAD_HEADER))
        for i, r in enumerate(rows):
            line_no = i + 2
            line_of[id(r)] = line_no
            if "raw" in r:
                f.write(r["raw"])
            else:
                f.write(csv_line(r["fields"]))
            if r["kind"] == "malformed":
                malformed.append((line_no, r["reason"]))
            if r["kind"] == "duplicate":
                dup_lines.append((line_of[id(r["of"])], line_no, r["fields"][0].strip().lower()))
            kinds.setdefault(r["kind"], []).append(line_no)
    return malformed, dup_lines, kinds


# ---------------------------------------------------------------------------
# 3. sample-leads.jsonl
# ---------------------------------------------------------------------------
EVENT_START = datetime(2026, 8, 1, 0, 0, 0, tzinfo=timezone.utc)
EVENT_END = datetime(2026, 11, 22, 23, 59, 59, tzinfo=timezone.utc)
PAGES = ["/", "/pricing", "/pricing", "/product", "/product/routing", "/product/scoring", "/docs/getting-started",
         "/customers", "/blog/lead-scoring-101", "/blog/speed-to-lead", "/integrations/salesforce",
         "/integrations/hubspot", "/security", "/demo", "/compare/legacy-router"]
FORMS = ["demo-request", "contact-sales", "newsletter", "trial-signup", "webinar-registration"]
ASSETS = ["roi-guide", "lead-routing-playbook", "benchmark-report-2026", "security-whitepaper",
          "revops-checklist"]
WEBINARS = ["scoring-101", "routing-at-scale", "revops-office-hours-nov"]
TRIAL_ACTIONS = ["signed_up", "invited_teammate", "connected_crm", "created_workspace", "imported_leads",
                 "api_key_created", "created_routing_rule"]
EMAIL_CAMPAIGNS = ["nurture-1", "nurture-2", "product-update-oct", "webinar-invite", "pricing-followup"]


def rfc3339(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_events(rng, engaged):
    n = rng.randint(0, 3) if not engaged else rng.randint(3, 12)
    span = (EVENT_END - EVENT_START).total_seconds()
    times = sorted(EVENT_START + timedelta(seconds=int(rng.random() * span)) for _ in range(n))
    evs = []
    for t in times:
        typ = rng.choices(["page_view", "form_submit", "email_click", "webinar_attended", "trial_activity",
                           "content_download"], [40, 10, 18, 6, 12, 10])[0]
        e = {"type": typ, "at": rfc3339(t)}
        if typ == "page_view":
            e["path"] = rng.choice(PAGES)
        elif typ == "form_submit":
            e["form"] = rng.choice(FORMS)
        elif typ == "email_click":
            e["campaign"] = rng.choice(EMAIL_CAMPAIGNS)
        elif typ == "webinar_attended":
            e["webinar"] = rng.choice(WEBINARS)
        elif typ == "trial_activity":
            e["action"] = rng.choice(TRIAL_ACTIONS)
        elif typ == "content_download":
            e["asset"] = rng.choice(ASSETS)
        evs.append(e)
    return evs


def build_jsonl(firmo):
    rng = random.Random(SEED + 3)
    firmo_by_dom = {r["domain"]: r for r in firmo}
    firmo_domains = sorted(firmo_by_dom)
    leads = []
    used = set()
    ids = iter(rng.sample(range(100000, 999999), 100))
    for i in range(40):
        fn, ln = pick_person(rng)
        r = rng.random()
        if r < 0.80 or i == 0:
            dom = "acme.io" if i == 0 else rng.choice(firmo_domains)
            c = firmo_by_dom[dom]
            email = f"{local_part(rng, fn, ln, company_pattern(dom))}@{dom}"
            company, cc = c["name"], c["country"]
            emp = c["employees"]
        elif r < 0.88:
            dom, company, cc, _ind = rng.choice(UNKNOWN_BUSINESS)
            email = f"{local_part(rng, fn, ln, 'first.last')}@{dom}"
            emp = None
        elif r < 0.97:
            fdom = wchoice(rng, FREE_FOR_LEADS)
            email = f"{free_local(rng, fn, ln)}@{fdom}"
            dom, company, cc, emp = None, None, rng.choice(["US", "GB", None]), None
        else:
            email = f"{ascii_slug(fn)}{rng.randint(1, 999)}@mailinator.com"
            dom, company, cc, emp = None, None, None, None
        if email in used:
            email = email.replace("@", f"{rng.randint(2, 9)}@")
        used.add(email)
        if rng.random() < 0.1:
            email = email.capitalize()
        title = rng.choice(TITLES[wchoice(rng, TITLE_WEIGHTS_BUSINESS)])
        attrs = {}
        if rng.random() < 0.5:
            attrs["utm_campaign"] = rng.choice(UTM_CAMPAIGNS)
        if rng.random() < 0.35:
            attrs["budget"] = rng.choice(BUDGETS)
        if rng.random() < 0.35:
            attrs["timeline"] = rng.choice(TIMELINES)
        if rng.random() < 0.2:
            attrs["employees_hint"] = employees_hint_for(emp) or rng.choice(EMPLOYEE_HINTS)
        if rng.random() < 0.15:
            attrs["crm_campaign_id"] = f"7015g00000{rng.randint(10000, 99999)}"
        engaged = rng.random() < 0.7
        events = make_events(rng, engaged)
        # a few leads end with an unsubscribe or a bounce
        if i in (7, 23):
            last = events[-1]["at"] if events else "2026-09-01T09:00:00Z"
            t = datetime.strptime(last, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) + timedelta(days=3, hours=2)
            events.append({"type": "unsubscribe", "at": rfc3339(min(t, EVENT_END))})
        if i in (12, 31):
            t = EVENT_START + timedelta(days=rng.randint(5, 100), hours=rng.randint(0, 23))
            events = [e for e in events if e["at"] < rfc3339(t)] + [{"type": "bounce", "at": rfc3339(t)}]
        lead = {
            "email": email,
            "first_name": fn,
            "last_name": ln,
            "title": title,
            "company": company,
            "domain": dom,
            "phone": phone_for(rng, cc) if cc and rng.random() < 0.5 else None,
            "country": cc,
            "source": wchoice(rng, SOURCES),
            "external_id": f"api-{next(ids)}" if rng.random() < 0.9 else None,
            "attributes": attrs,
            "events": events,
        }
        # occasionally omit optional keys entirely instead of sending null
        for k in ("phone", "external_id", "company"):
            if lead[k] is None and rng.random() < 0.5:
                del lead[k]
        leads.append(json.dumps(lead, ensure_ascii=False, separators=(", ", ": ")))

    lines = list(leads)
    bad_text = "this is not json {email: oops@acme.io, first_name: Nope"
    bad_type = json.dumps({"email": 4155550142, "first_name": "Theo", "last_name": "Lambert",
                           "title": "Account Executive", "company": "Kestrel Data", "domain": "kestrel-data.io",
                           "country": "US", "source": "api", "external_id": "api-000042", "attributes": {},
                           "events": []}, separators=(", ", ": "))
    lines.insert(13, bad_text)   # line 14
    lines.insert(30, bad_type)   # line 31
    path = os.path.join(CONFIG_DIR, "sample-leads.jsonl")
    with open(path, "w", encoding="utf-8", newline="") as f:
        for l in lines:
            f.write(l + "\n")
    return [(14, "not JSON at all"), (31, 'valid JSON but "email" is a number (wrong type)')], len(lines)


# ---------------------------------------------------------------------------
# 4/5. domain lists
# ---------------------------------------------------------------------------
def write_domain_lists():
    free = list(dict.fromkeys(FREE_EMAIL_DOMAINS))
    disp = list(dict.fromkeys(DISPOSABLE_EMAIL_DOMAINS))
    with open(os.path.join(CONFIG_DIR, "free-email-domains.txt"), "w", encoding="utf-8", newline="") as f:
        f.write("# Free / consumer webmail provider domains (one per line, lowercase). Leads at these domains are not business emails.\n")
        f.write("# Admins may extend this list: add one domain per line; lines starting with # are comments.\n")
        for d in free:
            f.write(d + "\n")
    with open(os.path.join(CONFIG_DIR, "disposable-email-domains.txt"), "w", encoding="utf-8", newline="") as f:
        f.write("# Disposable / throwaway email provider domains (one per line, lowercase). Leads at these domains are rejected or heavily penalised.\n")
        f.write("# Admins may extend this list: add one domain per line; lines starting with # are comments.\n")
        for d in disp:
            f.write(d + "\n")
    return len(free), len(disp)


# ---------------------------------------------------------------------------
# 6. accounts.csv
# ---------------------------------------------------------------------------
OWNERS = [("41629779", "Ada Brennan"), ("41629780", "Grace Nakamura"), ("41629781", "Linus Ferreira"),
          ("41629782", "Barbara Osei"), ("41629783", "Katherine Duval"), ("41629784", "Margaret Holloway")]


def build_accounts(firmo):
    rng = random.Random(SEED + 4)
    firmo_by_dom = {r["domain"]: r for r in firmo}
    must = ["stripe.com", "datadog.com", "shopify.com", "siemens.de", "atlassian.com", "acme.io",
            "harbourline.co.uk", "bbc.co.uk", "kestrel-data.io", "northwind-traders.com"]
    real = [c[0] for c in REAL_COMPANIES if c[0] not in must]
    fict = sorted(d for d in firmo_by_dom if d not in must and d not in set(real))
    chosen = must + rng.sample(real, 20) + rng.sample(fict, 10)
    rng.shuffle(chosen)
    forced_forms = {"stripe.com": "https://www.stripe.com", "datadog.com": "www.datadog.com",
                    "bbc.co.uk": "https://www.bbc.co.uk/news", "shopify.com": "http://shopify.com/",
                    "atlassian.com": "Atlassian.com"}
    rows = []
    ids = rng.sample(range(5000000000, 9999999999), len(chosen))
    for d, aid in zip(chosen, ids):
        c = firmo_by_dom[d]
        if d in forced_forms:
            dom_text = forced_forms[d]
        elif rng.random() < 0.2:
            dom_text = rng.choice([f"https://{d}", f"www.{d}", f"https://www.{d}/", f"http://www.{d}/en/"])
        else:
            dom_text = d
        emp = c["employees"] or 0
        if emp >= 10000:
            tier = "strategic"
        elif emp >= 1000:
            tier = "enterprise"
        else:
            tier = "commercial"
        if rng.random() < 0.1:  # a few accounts hand-upgraded one tier by sales leadership
            tier = {"commercial": "enterprise", "enterprise": "strategic"}.get(tier, tier)
        owner, owner_name = rng.choice(OWNERS)
        name = c["name"]
        if rng.random() < 0.15:  # CRM names drift from the firmographics name
            name = name.upper() if rng.random() < 0.3 else name + " (HQ)"
        rows.append([str(aid), dom_text, name, owner, owner_name, tier])
    with open(os.path.join(CONFIG_DIR, "accounts.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["account_id", "domain", "name", "owner", "owner_name", "tier"])
        w.writerows(rows)
    return rows


# ---------------------------------------------------------------------------
# 7. past-leads.csv
# ---------------------------------------------------------------------------
def logit_features(rec):
    emp = rec["employees"] if rec["employees"] else MISSING_EMPLOYEES_ASSUMED
    return (
        COEF["demo"] * (rec["demo_requested"] == "yes")
        + COEF["pricing"] * min(rec["pricing_visits"], 8)
        + COEF["page_views"] * min(rec["page_views"], 40)
        + COEF["log_employees"] * math.log10(max(emp, 1))
        + COEF["senior"] * bool(SENIOR_RE.search(rec["title"] or ""))
        + COEF["budget_50k_plus"] * (rec["budget"] == "50k+")
        + COEF["budget_10k_50k"] * (rec["budget"] == "10k-50k")
        + COEF["timeline_now"] * (rec["timeline"] == "now")
        + COEF["timeline_quarter"] * (rec["timeline"] == "this quarter")
        + COEF["free_mail"] * rec["_free"]
        + COEF["disposable"] * rec["_disposable"]
        + COEF["student_intern"] * bool(JUNIOR_RE.search(rec["title"] or ""))
    )


def build_past_leads(firmo):
    rng = random.Random(SEED + 5)
    firmo_by_dom = {r["domain"]: r for r in firmo}
    firmo_domains = sorted(firmo_by_dom)
    used = set()
    recs = []
    for i in range(600):
        fn, ln = pick_person(rng)
        r = rng.random()
        free = disposable = False
        if r < 0.80:
            dom = rng.choice(firmo_domains)
            c = firmo_by_dom[dom]
            email = f"{local_part(rng, fn, ln, company_pattern(dom))}@{dom}"
            company, cc, emp, ind = c["name"], c["country"], c["employees"], c["industry"]
            tw = TITLE_WEIGHTS_BUSINESS
        elif r < 0.87:
            dom, company, cc, ind = rng.choice(UNKNOWN_BUSINESS)
            email = f"{local_part(rng, fn, ln, 'first.last')}@{dom}"
            # the lead self-reported a size; stable per company, sometimes left blank
            emp = max(3, int(random.Random(dom).lognormvariate(math.log(60), 1.0))) if rng.random() < 0.7 else None
            ind = ind if rng.random() < 0.8 else ""
            tw = TITLE_WEIGHTS_BUSINESS
        elif r < 0.985:
            free = True
            fdom = wchoice(rng, FREE_FOR_LEADS)
            email = f"{free_local(rng, fn, ln)}@{fdom}"
            company = rng.choice(["", "", "", "Self-employed", firmo_by_dom[rng.choice(firmo_domains)]["name"]])
            cc = rng.choice(["US", "US", "GB", "CA", "IN", "DE", ""])
            emp, ind = None, ""
            tw = TITLE_WEIGHTS_FREE
        else:
            disposable = True
            email = f"{ascii_slug(fn)}{rng.randint(1, 9999)}@{rng.choice(DISPOSABLE_FOR_LEADS)}"
            company, cc, emp, ind = "", "", None, ""
            tw = TITLE_WEIGHTS_FREE
        if email in used:
            local, d = email.split("@")
            email = f"{local}{rng.randint(2, 99)}@{d}"
        used.add(email)
        title = rng.choice(TITLES[wchoice(rng, tw)])
        senior = bool(SENIOR_RE.search(title))
        e = emp or 20
        # budget correlates with company size and seniority
        big = math.log10(max(e, 1))
        pb = rng.random()
        if pb < 0.30:
            budget = ""
        else:
            score = big / 4.5 + (0.25 if senior else 0) + rng.uniform(-0.35, 0.35)
            budget = "50k+" if score > 0.85 else ("10k-50k" if score > 0.5 else "<10k")
        timeline = rng.choices(["", "now", "this quarter", "next year"], [35, 15, 25, 25])[0]
        page_views = min(60, 1 + int(rng.expovariate(1 / 6.0)))
        pricing = min(10, sum(1 for _ in range(page_views) if rng.random() < rng.uniform(0.08, 0.3)))
        p_demo = 1 / (1 + math.exp(-(-2.6 + 0.45 * pricing + 0.6 * senior - 1.0 * free)))
        demo = "yes" if rng.random() < p_demo else "no"
        rec = dict(email=email, first_name=fn, last_name=ln, title=title, company=company, country=cc,
                   source=wchoice(rng, SOURCES), utm_campaign=rng.choice(UTM_CAMPAIGNS) if rng.random() < 0.5 else "",
                   budget=budget, timeline=timeline, employees=emp, industry=ind, page_views=page_views,
                   pricing_visits=pricing, demo_requested=demo, _free=free, _disposable=disposable,
                   _u=rng.random())
        recs.append(rec)
    return recs


def calibrate(recs, target=0.20):
    lo, hi = -15.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        mean = sum(1 / (1 + math.exp(-(mid + logit_features(r)))) for r in recs) / len(recs)
        if mean < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def write_past_leads(recs):
    n_conv = 0
    with open(os.path.join(CONFIG_DIR, "past-leads.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["email", "first_name", "last_name", "title", "company", "country", "source", "utm_campaign",
                    "budget", "timeline", "employees", "industry", "page_views", "pricing_visits",
                    "demo_requested", "converted"])
        for r in recs:
            p = 1 / (1 + math.exp(-(B0 + logit_features(r))))
            conv = "yes" if r["_u"] < p else "no"
            n_conv += conv == "yes"
            w.writerow([r["email"], r["first_name"], r["last_name"], r["title"], r["company"], r["country"],
                        r["source"], r["utm_campaign"], r["budget"], r["timeline"], fmt_int(r["employees"]),
                        r["industry"], r["page_views"], r["pricing_visits"], r["demo_requested"], conv])
    return n_conv


# ---------------------------------------------------------------------------
# MALFORMED.md
# ---------------------------------------------------------------------------
def write_malformed_md(malformed, dup_lines, kinds, jsonl_bad, jsonl_lines):
    p = os.path.join(CONFIG_DIR, "sample-leads.MALFORMED.md")
    with open(p, "w", encoding="utf-8", newline="") as f:
        f.write("# Malformed rows in the sample lead files\n\n")
        f.write("Generated by `config/tools/gen_sample_data.py`; regenerate both together.\n")
        f.write("Line numbers are 1-based physical lines; line 1 is the CSV header. No field in the\n")
        f.write("file contains an embedded newline, so physical line = CSV record + 1.\n\n")
        f.write("## sample-leads.csv\n\n")
        f.write(f"{len(malformed)} malformed rows:\n\n")
        f.write("| line | reason |\n|-----:|--------|\n")
        for ln, reason in malformed:
            f.write(f"| {ln} | {reason} |\n")
        f.write("\nEvery other data row is valid (email and/or website present and well-formed;\n")
        f.write("emails may need trimming/lower-casing, websites may carry scheme, `www.`, a\n")
        f.write("subdomain or a path).\n\n")
        f.write("Other rows worth knowing about (all valid):\n\n")
        f.write("- Duplicates (same person, different case/spacing and source): " +
                ", ".join(f"lines {a} and {b} (`{e}`)" for a, b, e in dup_lines) + ".\n")
        f.write("- Domain-only rows (no email, website given): lines " +
                ", ".join(str(x) for x in kinds.get("domain_only", [])) + ".\n")
        f.write("- Disposable-domain emails: lines " +
                ", ".join(str(x) for x in kinds.get("disposable", [])) + ".\n")
        f.write(f"- Free-mail emails: {len(kinds.get('free', []))} rows; business emails at domains not in "
                f"firmographics.csv: {len(kinds.get('unknown', []))} rows.\n\n")
        f.write("## sample-leads.jsonl\n\n")
        f.write(f"{jsonl_lines} lines, {jsonl_lines - len(jsonl_bad)} valid leads, {len(jsonl_bad)} malformed lines:\n\n")
        f.write("| line | reason |\n|-----:|--------|\n")
        for ln, reason in jsonl_bad:
            f.write(f"| {ln} | {reason} |\n")


# ---------------------------------------------------------------------------
# verification
# ---------------------------------------------------------------------------
EMAIL_RE = re.compile(r"^[a-z0-9._%+'-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$")
DOMAIN_RE = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")


def read_list(name):
    with open(os.path.join(CONFIG_DIR, name), encoding="utf-8") as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def verify():
    ok = True

    def fail(msg):
        nonlocal ok
        ok = False
        print("FAIL:", msg)

    # firmographics
    with open(os.path.join(CONFIG_DIR, "firmographics.csv"), encoding="utf-8", newline="") as f:
        rdr = list(csv.reader(f))
    header, body = rdr[0], rdr[1:]
    firmo = {}
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            fail(f"firmographics line {i}: {len(row)} cols")
        d = dict(zip(header, row))
        if not d["domain"] or not d["name"]:
            fail(f"firmographics line {i}: missing domain/name")
        if d["domain"] != d["domain"].lower() or not DOMAIN_RE.match(d["domain"]):
            fail(f"firmographics line {i}: bad domain {d['domain']}")
        if d["domain"] in firmo:
            fail(f"firmographics duplicate domain {d['domain']}")
        if d["employees"] and not (3 <= int(d["employees"]) <= 200000):
            fail(f"employees out of range at line {i}")
        firmo[d["domain"]] = d
    us = sum(1 for d in firmo.values() if d["country"] == "US")
    print(f"firmographics.csv: {len(body)} rows ({us} US = {us / len(body):.0%}), "
          f"employees 10..1000: {sum(1 for d in firmo.values() if d['employees'] and 10 <= int(d['employees']) <= 1000)}")

    free = read_list("free-email-domains.txt")
    disp = read_list("disposable-email-domains.txt")
    for name, lst in (("free", free), ("disposable", disp)):
        if len(lst) != len(set(lst)):
            fail(f"{name} list has duplicates")
        for d in lst:
            if d != d.lower() or not DOMAIN_RE.match(d):
                fail(f"{name} list bad entry {d!r}")
            if d in firmo:
                fail(f"{name} domain {d} is also in firmographics")
    if set(free) & set(disp):
        fail(f"free/disposable overlap: {sorted(set(free) & set(disp))}")
    print(f"free-email-domains.txt: {len(free)} domains; disposable-email-domains.txt: {len(disp)} domains")

    # sample-leads.csv: reference validator must flag exactly the documented lines
    with open(os.path.join(CONFIG_DIR, "sample-leads.csv"), encoding="utf-8", newline="") as f:
        text = f.read()
    lines = text.split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    flagged = []
    cats = {"firmo": 0, "unknown": 0, "free": 0, "disposable": 0, "domain_only": 0}
    seen = {}
    for ln, raw in enumerate(lines, start=1):
        row = next(csv.reader([raw]))
        if ln == 1:
            if row != LEAD_HEADER:
                fail("sample-leads header mismatch")
            continue
        if len(row) != len(LEAD_HEADER):
            flagged.append(ln)
            continue
        d = dict(zip(LEAD_HEADER, row))
        email = d["email"].strip().lower()
        web = d["website"].strip()
        if email:
            if not EMAIL_RE.match(email):
                flagged.append(ln)
                continue
            dom = email.split("@")[1]
            if dom in free:
                cats["free"] += 1
            elif dom in disp:
                cats["disposable"] += 1
            elif dom in firmo:
                cats["firmo"] += 1
            else:
                cats["unknown"] += 1
            seen.setdefault(email, []).append(ln)
        elif web:
            host = registrable_from_website(web)
            if not DOMAIN_RE.match(host):
                flagged.append(ln)
                continue
            cats["domain_only"] += 1
        else:
            flagged.append(ln)
            continue
        if web:
            host = registrable_from_website(web)
            if not DOMAIN_RE.match(host):
                fail(f"sample-leads line {ln}: website {web!r} does not normalise")
    md = open(os.path.join(CONFIG_DIR, "sample-leads.MALFORMED.md"), encoding="utf-8").read()
    csv_part = md.split("## sample-leads.jsonl")[0]
    documented = [int(x) for x in re.findall(r"^\| (\d+) \|", csv_part, re.M)]
    if flagged != documented:
        fail(f"malformed lines differ: flagged={flagged} documented={documented}")
    dups = {e: l for e, l in seen.items() if len(l) > 1}
    n_data = len(lines) - 1
    print(f"sample-leads.csv: {n_data} data rows; malformed lines {flagged}; "
          f"valid-row mix {cats}; duplicate emails {dups}")
    if n_data < 230:
        fail("sample-leads has fewer than 230 rows")

    # jsonl
    bad = []
    with open(os.path.join(CONFIG_DIR, "sample-leads.jsonl"), encoding="utf-8") as f:
        jl = f.read().split("\n")[:-1]
    for ln, raw in enumerate(jl, start=1):
        try:
            o = json.loads(raw)
        except json.JSONDecodeError:
            bad.append(ln)
            continue
        if not isinstance(o.get("email"), str):
            bad.append(ln)
            continue
        for ev in o["events"]:
            if not ("2026-08-01T00:00:00Z" <= ev["at"] <= "2026-11-22T23:59:59Z"):
                fail(f"jsonl line {ln}: event time {ev['at']} out of range")
            datetime.strptime(ev["at"], "%Y-%m-%dT%H:%M:%SZ")
    jdoc = [int(x) for x in re.findall(r"^\| (\d+) \|", md.split("## sample-leads.jsonl")[1], re.M)]
    if bad != jdoc:
        fail(f"jsonl malformed lines differ: {bad} vs {jdoc}")
    print(f"sample-leads.jsonl: {len(jl)} lines, {len(jl) - len(bad)} valid leads, malformed lines {bad}")

    # accounts
    with open(os.path.join(CONFIG_DIR, "accounts.csv"), encoding="utf-8", newline="") as f:
        rdr = list(csv.reader(f))
    if rdr[0] != ["account_id", "domain", "name", "owner", "owner_name", "tier"]:
        fail("accounts header mismatch")
    owner_ids = {o for o, _ in OWNERS}
    for i, row in enumerate(rdr[1:], start=2):
        if len(row) != 6:
            fail(f"accounts line {i}: {len(row)} cols")
        dom = registrable_from_website(row[1])
        if dom not in firmo:
            fail(f"accounts line {i}: {row[1]!r} -> {dom} not in firmographics")
        if row[3] not in owner_ids or row[5] not in ("strategic", "enterprise", "commercial"):
            fail(f"accounts line {i}: bad owner/tier")
    print(f"accounts.csv: {len(rdr) - 1} rows, all domains resolve to firmographics.csv")

    # past leads
    with open(os.path.join(CONFIG_DIR, "past-leads.csv"), encoding="utf-8", newline="") as f:
        rdr = list(csv.DictReader(f))
    conv = [r for r in rdr if r["converted"] == "yes"]

    def rate(rows):
        return f"{sum(r['converted'] == 'yes' for r in rows) / max(len(rows), 1):.0%} (n={len(rows)})"
    demo_y = [r for r in rdr if r["demo_requested"] == "yes"]
    demo_n = [r for r in rdr if r["demo_requested"] == "no"]
    freem = [r for r in rdr if r["email"].split("@")[1] in free]
    senior = [r for r in rdr if SENIOR_RE.search(r["title"])]
    junior = [r for r in rdr if JUNIOR_RE.search(r["title"])]
    print(f"past-leads.csv: {len(rdr)} rows, converted {len(conv)} ({len(conv) / len(rdr):.1%}); "
          f"demo yes {rate(demo_y)} vs no {rate(demo_n)}; free-mail {rate(freem)}; "
          f"senior {rate(senior)}; student/intern {rate(junior)}")
    for r in rdr:
        if len(r) != 16 or None in r:
            fail("past-leads column count")
    print("VERIFY:", "OK" if ok else "FAILED")
    return ok


# ---------------------------------------------------------------------------
def main():
    firmo = build_firmographics()
    if "--calibrate" in sys.argv:
        recs = build_past_leads(firmo)
        print(f"intercept for 20% expected conversion: {calibrate(recs):.3f}")
        return 0
    if "--verify-only" not in sys.argv:
        write_firmographics(firmo)
        rows = build_sample_leads(firmo)
        malformed, dup_lines, kinds = write_sample_leads(rows)
        jsonl_bad, jsonl_lines = build_jsonl(firmo)
        write_malformed_md(malformed, dup_lines, kinds, jsonl_bad, jsonl_lines)
        write_domain_lists()
        build_accounts(firmo)
        write_past_leads(build_past_leads(firmo))
    return 0 if verify() else 1


if __name__ == "__main__":
    sys.exit(main())
